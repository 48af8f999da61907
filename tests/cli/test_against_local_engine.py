"""`start --wait`, `runs`, `show` and `nodes` against the real workflow on the local engine and simulated fleet
(deployed as gpu_recovery.simulate does): one recovery of a transient XID 79, started by hand."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import boto3
import pytest
from cli_helpers import CliRun

from gpu_recovery.clock import SimClock
from gpu_recovery.engine import LocalEngine
from gpu_recovery.local_stack import LocalStack, deploy
from gpu_recovery.sim import FaultSpec, JobSpec, NodeSpec, SimFleet
from recovery import clock as step_clock
from recovery.settings import get_settings

pytestmark = pytest.mark.slow


@dataclass
class Local:
    stack: LocalStack
    fleet: SimFleet
    flags: list[str]


@pytest.fixture
def local() -> Iterator[Local]:
    clock = SimClock()
    nodes = [NodeSpec("bad", fault=FaultSpec("xid79")), NodeSpec("good")]
    with (
        LocalEngine(clock) as engine,
        SimFleet(clock, "gpu-cluster", nodes, [JobSpec("job-a", ["bad", "good"])]) as fleet,
        mock.patch.object(step_clock, "utcnow", clock.now),
    ):
        get_settings.cache_clear()
        stack = deploy(engine, fleet, {})
        config = stack.config
        # No CloudFormation here: the resources are given explicitly (the cluster comes from the definition).
        flags = [
            "--state-machine-arn", stack.state_machine_arn,
            "--task-table", config.TASK_TABLE_NAME,
            "--job-table", config.JOB_TABLE_NAME,
            "--node-table", config.NODE_TABLE_NAME,
        ]  # fmt: skip
        yield Local(stack, fleet, flags)
        get_settings.cache_clear()


def test_start_wait_follows_a_recovery_to_the_end(local: Local, cli: CliRun, tmp_path: Path) -> None:
    bad = local.fleet.instance_id("bad")
    [task] = [t for t in local.fleet.job_tasks("job-a") if _on(local, t) == bad]
    local.fleet.fail_task(task, exit_code=1, reason="Xid 79")

    code, out, err = cli(
        "start", task, "--reason", "xid 79 on rank 0", "--wait", "--poll-seconds", "0.05", *local.flags
    )

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"Started recovery for task {task}"
    states = [line.split()[1] for line in lines if line.startswith("  +")]
    assert states[:3] == ["ClassifyFailure", "ShouldRecover", "LockJob"]
    assert states[-4:] == ["RestartJob", "NotifyRecoveryResult", "ReleaseJob", "RecoveryComplete"]
    for state in ("RunDcgmDiag", "AnalyzeDiag", "DrainNode", "RebootInstance", "ReactivateNode", "ReleaseNode"):
        assert state in states
    assert f"RebootInstance  [{bad}]" in out
    assert lines[-1].startswith("SUCCEEDED after ")
    name = lines[1].split()[-1].rsplit(":", 1)[-1]

    check_runs(local, cli, name, bad)
    check_show(local, cli, name, bad, tmp_path)
    check_nodes(local, cli, bad)


def check_runs(local: Local, cli: CliRun, name: str, bad: str) -> None:
    """runs: the manual recovery, its job, nodes and outcome."""
    code, out, _ = cli("runs", *local.flags)
    assert code == 0
    row = next(line for line in out.splitlines() if name in line)
    assert "SUCCEEDED" in row
    assert "job-a" in row
    assert f"{bad} REPAIRED" in row
    assert "RESTARTED" in row
    code, out, _ = cli("runs", "--node", bad, "--json", *local.flags)
    [summary] = json.loads(out)
    assert summary["name"] == name
    assert summary["outcome"] == "RESTARTED"
    assert summary["job"] == "job-a"
    code, out, _ = cli("runs", "--job", "job-b", *local.flags)
    assert code == 0
    assert "no recovery executions match" in out


def check_show(local: Local, cli: CliRun, name: str, bad: str, tmp_path: Path) -> None:
    """show: path with timings, verdicts with findings, actions, the caught DCGM failure, the timeline."""
    svg = tmp_path / "timeline.svg"
    code, out, _ = cli("show", name, "--timeline", str(svg), *local.flags)
    assert code == 0
    timeline = out.split("\nTimeline (")[1].split("\n\n")[0]
    assert f"{bad}  WaitForAgent" in timeline
    assert f"<title>{bad} WaitForAgent: " in svg.read_text()
    assert "Status     SUCCEEDED" in out
    assert "Outcome    RESTARTED" in out
    assert f"[{bad}]" in out
    assert "RebootInstance" in out
    verdicts = out.split("Verdicts (AnalyzeDiag)")[1].split("\n\n")[0]
    assert f"{bad}  INITIAL" in verdicts
    assert "UNHEALTHY/REBOOT" in verdicts
    assert "-> REBOOT" in verdicts
    assert f"{bad}  AFTER_REBOOT" in verdicts
    assert "HEALTHY/NONE" in verdicts
    actions = out.split("\nActions\n")[1].split("\n\n")[0]
    assert f"reboot instance {bad}" in actions
    assert "decide / restart job" in actions
    # The failed DCGM check is the workflow working, not an error: shown with its exit code and stop reason.
    assert "\nErrors\n" not in out
    handled = out.split("\nHandled by the workflow (caught or retried, not errors)\n")[1].split("\n\n")[0]
    assert f"RunDcgmDiag [{bad}]: States.TaskFailed: ECS task stopped: EssentialContainerExited" in handled
    assert re.search(r"exit \d+ -> AnalyzeDiag\n", handled)
    code, out, _ = cli("show", name, "--json", *local.flags)
    assert code == 0
    assert {(v["node"], v["phase"], v["status"]) for v in json.loads(out)["verdicts"]} >= {
        (bad, "INITIAL", "UNHEALTHY"),
        (bad, "AFTER_REBOOT", "HEALTHY"),
    }


def check_nodes(local: Local, cli: CliRun, bad: str) -> None:
    """nodes: the repaired node."""
    code, out, _ = cli("nodes", *local.flags)
    assert code == 0
    row = next(line for line in out.splitlines() if bad in line)
    assert "HEALTHY" in row
    assert "HEALTHY/NONE" in row


def _on(local: Local, task_arn: str) -> str:
    ecs = boto3.client("ecs")
    task = ecs.describe_tasks(cluster=local.fleet.cluster_arn, tasks=[task_arn])["tasks"][0]
    ci = ecs.describe_container_instances(
        cluster=local.fleet.cluster_arn, containerInstances=[task["containerInstanceArn"]]
    )
    return str(ci["containerInstances"][0]["ec2InstanceId"])
