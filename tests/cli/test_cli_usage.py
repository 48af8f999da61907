"""The command line as a whole: global flags anywhere, --version, a parser that loads neither boto3 nor moto,
input checked before any AWS call, the region of a task ARN, offline classify, one JSON document with --json,
and the documented exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from unittest import mock

import boto3
import pytest
from cli_helpers import CliRun, Deployment
from test_classify import event_file

from gpu_recovery import cli as cli_module
from gpu_recovery.cli import command_names

TASK_ARN = "arn:aws:ecs:us-west-2:123456789012:task/gpu-cluster/0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def fresh_default_session() -> Iterator[None]:
    """--region / a task ARN's region configure boto3's default session: no test inherits another's."""
    boto3.DEFAULT_SESSION = None
    yield
    boto3.DEFAULT_SESSION = None


@pytest.fixture
def no_aws() -> Iterator[None]:
    """No credentials anywhere, and any attempt to reach AWS fails the test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    with (
        mock.patch.dict(os.environ, env, clear=True),
        mock.patch("botocore.endpoint.Endpoint._send", side_effect=AssertionError("an AWS call was made")),
    ):
        yield


def test_global_flags_work_before_and_after_the_command(deployment: Deployment, cli: CliRun) -> None:
    after = cli("runs", "--json", "--region", "us-east-1")
    before = cli("--json", "--region", "us-east-1", "runs")
    assert after[0] == before[0] == 0
    assert json.loads(after[1]) == json.loads(before[1]) == []


def test_every_command_takes_the_global_flags(cli: CliRun) -> None:
    for name in command_names():
        code, out, _ = cli(name, "--help")
        assert code == 0
        assert all(flag in out for flag in ("--region", "--profile", "--json")), name


def test_each_command_is_summed_up_in_a_whole_sentence() -> None:
    """`--help` lists each command by its docstring's summary; one that wraps was cut mid-sentence ("... PASS,
    WARN or FAIL,")."""
    summaries = {name: cli_module._summary(name) for name in cli_module.command_names()}
    assert summaries["doctor"] == "is this deployment ready for its first incident?"
    assert summaries["locks"] == "every job and node lock and fleet-breaker slot, with whether its owner still runs"
    assert not [name for name, summary in summaries.items() if summary.endswith((",", ";"))]


def test_version(cli: CliRun) -> None:
    code, out, _ = cli("--version")
    assert code == 0
    assert out.startswith("gpu-recovery ")


@pytest.mark.parametrize("argv", [["--help"], ["simulate", "--help"], ["--version"]])
def test_the_parser_loads_neither_boto3_nor_moto(argv: list[str]) -> None:
    script = (
        "import sys\n"
        "from gpu_recovery import cli\n"
        f"cli.parser({argv!r})\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore', 'moto', 'aws_cdk'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_malformed_task_arn_is_a_usage_error_before_any_aws_call(no_aws: None, cli: CliRun) -> None:
    code, _, err = cli("start", "not-an-arn")
    assert code == 2
    assert err.strip() == (
        "gpu-recovery start: 'not-an-arn' is not an ECS task ARN (arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/TASK_ID)"
    )


def test_missing_credentials_is_a_failure_not_a_usage_error(no_aws: None, cli: CliRun) -> None:
    code, _, err = cli("start", TASK_ARN)
    assert code == 1
    assert "Unable to locate credentials" in err
    assert "Traceback" not in err


def test_start_uses_the_region_of_the_task_arn(deployment: Deployment, cli: CliRun) -> None:
    # The deployment is in us-east-1 (AWS_DEFAULT_REGION); the task ARN says us-west-2, so that is where
    # the stack is looked for.
    code, _, err = cli("start", TASK_ARN)
    assert code == 2
    assert "cannot read stack 'EcsGpuRecoveryStack'" in err
    assert boto3.DEFAULT_SESSION is not None
    assert boto3.DEFAULT_SESSION.region_name == "us-west-2"


def test_region_flag_contradicting_the_task_arn_is_a_usage_error(no_aws: None, cli: CliRun) -> None:
    code, _, err = cli("--region", "eu-west-1", "start", TASK_ARN)
    assert code == 2
    assert "--region eu-west-1 but the task ARN is in us-west-2" in err


def test_start_wait_json_prints_one_json_document(deployment: Deployment, cli: CliRun) -> None:
    def follow(context: object, arn: str, poll: float, timeout: float | None, out: TextIO) -> dict[str, Any]:
        print("  +0s      ClassifyFailure", file=out)
        now = datetime.now(UTC)
        return {"status": "FAILED", "startDate": now, "stopDate": now, "error": "E", "cause": "why"}

    with mock.patch("gpu_recovery.commands.start.follow", follow):
        # The task still runs: --force, as an operator who decided it is a GPU failure would.
        code, out, err = cli("start", deployment.tasks[0], "--force", "--wait", "--json")
    assert code == 1
    document = json.loads(out)
    assert (document["status"], document["error"], document["cause"]) == ("FAILED", "E", "why")
    assert "ClassifyFailure" in err
    assert "Started recovery" in err


def test_classify_offline_makes_no_aws_call(tmp_path: Path, deployment: Deployment, cli: CliRun) -> None:
    path = event_file(tmp_path, deployment, "task_stopped_gpu")
    with mock.patch("botocore.endpoint.Endpoint._send", side_effect=AssertionError("an AWS call was made")):
        code, out, _ = cli("classify", path, "--offline", "--cluster", "gpu-cluster", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["decision"] == "RECOVER"
    assert result["clusterArn"] == deployment.cluster_arn
    assert result["jobKey"] == "group"
    assert result["duplicateCheck"] is False


def test_classify_offline_without_credentials(tmp_path: Path, deployment: Deployment, cli: CliRun) -> None:
    path = event_file(tmp_path, deployment, "task_stopped_other_cluster")
    with mock.patch.dict(os.environ, {"GPU_RECOVERY_JOB_KEY": "startedBy"}):
        code, out, _ = cli("classify", path, "--offline", "--cluster", "gpu-cluster", "--json")
    assert code == 0
    assert json.loads(out)["decision"] == "IGNORE"
    assert json.loads(out)["jobKey"] == "startedBy"


def test_classify_offline_needs_the_cluster_and_an_event(tmp_path: Path, deployment: Deployment, cli: CliRun) -> None:
    path = event_file(tmp_path, deployment, "task_stopped_gpu")
    code, _, err = cli("classify", path, "--offline")
    assert code == 2
    assert "--offline needs the cluster" in err
    manual = tmp_path / "manual.json"
    manual.write_text(json.dumps({"taskArn": deployment.tasks[0], "reason": "x"}))
    code, _, err = cli("classify", str(manual), "--offline", "--cluster", "gpu-cluster")
    assert code == 2
    assert "a manual request needs DescribeTasks" in err


def test_a_closed_pipe_ends_quietly() -> None:
    script = (
        "import sys\n"
        "from gpu_recovery import cli\n"
        "from gpu_recovery.commands import diagnose\n"
        "def closed(args):\n"
        "    raise BrokenPipeError\n"
        "diagnose.run = closed\n"
        "sys.exit(cli.main(['diagnose', 'x']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr) == (1, "")


@pytest.mark.slow
def test_simulate_json_is_one_document_and_details_render_like_show(tmp_path: Path) -> None:
    def simulate(*argv: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "gpu_recovery.cli", "simulate", "--scenario", "dry-run", *argv]
        return subprocess.run(command, capture_output=True, text=True, check=False, cwd=tmp_path)

    as_json = simulate("--json")
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert document["passed"] is True
    assert [s["scenario"] for s in document["scenarios"]] == ["dry-run"]
    svg = tmp_path / "t.svg"
    details = simulate("--details", "--timeline", str(svg))
    assert details.returncode == 0, details.stderr
    for section in ("\nPath\n", "\nTimeline (", "\nVerdicts (AnalyzeDiag)\n", "\nActions\n", "\nnotifications:\n"):
        assert section in details.stdout
    assert details.stdout.rstrip().endswith("1 passed, 0 failed")
    assert svg.read_text().startswith("<svg")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["node", "history", "node-1"], "'node-1' is not an EC2 instance id"),
        (["node", "release", "i-123", "--reason", "fixed"], "'i-123' is not an EC2 instance id"),
        (["runs", "--node", "i-XYZ45678"], "'i-XYZ45678' is not an EC2 instance id"),
        (["runs", "--limit", "0"], "'0' is not a whole number of at least 1"),
    ],
)
def test_bad_arguments_are_usage_errors_before_any_aws_call(
    no_aws: None, cli: CliRun, argv: list[str], message: str
) -> None:
    code, _, err = cli(*argv)
    assert code == 2
    assert message in err


def test_an_invalid_scenario_is_one_line_per_problem(tmp_path: Path, cli: CliRun) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nnodes: {count: 1}\njobs: [{name: job-a, nodes: [node-1]}]\n"
        "events: [{job: job-b, node: node-1}]\nconfig: {DRYRUN: true}\n"
    )
    code, out, err = cli("simulate", "--scenario", str(bad))
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        f"gpu-recovery simulate: {bad}: events.0.job: no job named 'job-b' (jobs: job-a)",
        f"gpu-recovery simulate: {bad}: config.DRYRUN: not a configuration name (see docs/configuration.md)",
    ]
