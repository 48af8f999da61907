"""The policy-heavy steps (LockNode, RecordNodeState, RestartJob, HandleError) against the in-memory fakes of
tests/unit/fakes.py: what each decides and records, in milliseconds, beside the moto tests of the same handlers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from acquire_node import acquire
from fakes import FakeEcs, FakeStepFunctions, FakeTables
from handle_error import handle
from record_node_state import record
from restart_job import JobRequest, client_token, decide_and_restart
from unit_helpers import CLUSTER, ENV, EXECUTION_ARN, OTHER_EXECUTION_ARN, execution

from recovery import clock
from recovery.models import ExecutionContext
from recovery.requests import NodeStepRequest
from recovery.settings import Settings

NODE, OTHER_NODE = "i-0a1b2c3d4e5f60718", "i-0f1e2d3c4b5a69788"
CI, OTHER_CI = (f"arn:aws:ecs:us-east-1:123456789012:container-instance/{CLUSTER}/{n}" for n in ("ci-1", "ci-2"))
TASK = f"arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/0001"
SIBLING = f"arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/0002"
TASK_DEFINITION = "arn:aws:ecs:us-east-1:123456789012:task-definition/train:3"
NOW = datetime(2026, 11, 20, 3, 20, tzinfo=UTC)
FAILURE = {
    "taskArn": TASK,
    "clusterArn": f"arn:aws:ecs:us-east-1:123456789012:cluster/{CLUSTER}",
    "source": "event",
    "reason": "ECS event version 5",
    "stoppedAt": "2026-11-20T03:14:27+00:00",
    "version": 5,
}


@pytest.fixture(autouse=True)
def now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "utcnow", lambda: NOW)


def settings(**changes: str) -> Settings:
    return Settings.model_validate(ENV | changes)


def node_step(me: str = EXECUTION_ARN, **extra: Any) -> NodeStepRequest:
    return NodeStepRequest.model_validate(
        {
            "node": {"ec2InstanceId": NODE, "containerInstanceArn": CI},
            "jobId": "job-a",
            "failure": FAILURE,
            "dryRun": False,
            "execution": execution(me),
            **extra,
        }
    )


def analysis(next_step: str) -> dict[str, Any]:
    return {
        "verdict": {"status": "UNHEALTHY", "action": "REBOOT", "reasons": ["XID 79"]},
        "next": next_step,
        "reason": f"test: {next_step}",
    }


# ---- LockNode -------------------------------------------------------------------------------------
def test_a_free_node_is_locked_and_marked_under_repair() -> None:
    tables, ecs = FakeTables(), FakeEcs()
    lock = acquire(node_step(), settings(), tables, FakeStepFunctions(), ecs)
    assert lock.outcome == "ACQUIRED"
    assert tables.nodes[NODE]["lockOwner"] == EXECUTION_ARN
    assert ecs.under_repair == {CI}


def test_a_node_held_by_a_running_execution_is_waited_for_then_reported_busy() -> None:
    tables = FakeTables()
    sfn = FakeStepFunctions(running={EXECUTION_ARN})
    acquire(node_step(), settings(), tables, sfn, FakeEcs())
    waits = [acquire(node_step(OTHER_EXECUTION_ARN, lockWaits=n), settings(NODE_LOCK_MAX_WAITS="2"), tables, sfn,
                     FakeEcs()) for n in range(3)]  # fmt: skip
    assert [(w.outcome, w.lock_waits) for w in waits] == [("WAIT", 1), ("WAIT", 2), ("DONE", 2)]
    assert waits[-1].result is not None
    assert (waits[-1].result.outcome, waits[-1].result.handled_by) == ("BUSY", EXECUTION_ARN)
    assert tables.nodes[NODE]["lockOwner"] == EXECUTION_ARN


def test_the_lock_of_an_execution_that_ended_is_taken_over_and_said_so() -> None:
    tables = FakeTables()
    acquire(node_step(OTHER_EXECUTION_ARN), settings(), tables, FakeStepFunctions(), FakeEcs())
    lock = acquire(node_step(), settings(), tables, FakeStepFunctions(), FakeEcs())
    assert lock.outcome == "ACQUIRED"
    assert tables.nodes[NODE]["lockOwner"] == EXECUTION_ARN
    (row,) = tables.history(NODE)
    assert (row["kind"], row["detail"]["reason"]) == (
        "LOCK_TAKEN_OVER",
        f"lock owner {OTHER_EXECUTION_ARN} no longer runs",
    )


def test_a_lost_race_for_the_lock_waits_for_the_winner_without_reading_the_node_again() -> None:
    class Raced(FakeTables):
        reads = 0

        def get_node(self, node_id: str) -> dict[str, Any] | None:
            self.reads += 1
            return super().get_node(node_id)

        def lock_node(self, node_id: str, *args: Any, **kwargs: Any) -> tuple[bool, dict[str, Any] | None]:
            # Another execution locks the node between this step's read and its write.
            super().lock_node(node_id, CI, OTHER_EXECUTION_ARN, NOW.isoformat())
            return super().lock_node(node_id, *args, **kwargs)

    tables, ecs = Raced(), FakeEcs()
    lock = acquire(node_step(), settings(), tables, FakeStepFunctions(running={OTHER_EXECUTION_ARN}), ecs)
    assert (lock.outcome, lock.lock_waits) == ("WAIT", 1)
    assert ecs.under_repair == set()
    assert tables.reads == 1  # the refusal returned the winner's row (ALL_OLD)


def test_a_quarantined_node_is_not_locked() -> None:
    tables = FakeTables(nodes={NODE: {"nodeId": NODE, "recordKey": "STATE", "status": "QUARANTINED"}})
    lock = acquire(node_step(), settings(), tables, FakeStepFunctions(), FakeEcs())
    assert lock.outcome == "DONE"
    assert "lockOwner" not in tables.nodes[NODE]


# ---- RecordNodeState ------------------------------------------------------------------------------
def locked(tables: FakeTables, me: str = EXECUTION_ARN) -> FakeTables:
    tables.lock_node(NODE, CI, me, NOW.isoformat())
    return tables


def test_a_reboot_is_counted_once_per_execution() -> None:
    tables = locked(FakeTables())
    rebooting = node_step(action="REBOOTING", analysis=analysis("REBOOT"))
    first, retry = (record(rebooting, settings(), tables).dump() for _ in range(2))
    assert ((first["counted"], first["owned"]), (retry["counted"], retry["owned"])) == ((True, True), (False, True))
    assert tables.nodes[NODE]["reboots"] == [NOW.isoformat()]
    assert [row["kind"] for row in tables.history(NODE)] == ["REBOOT"]


def test_a_reboot_on_a_node_taken_away_is_neither_counted_nor_owned() -> None:
    tables = locked(FakeTables(), OTHER_EXECUTION_ARN)
    out = record(node_step(action="REBOOTING", analysis=analysis("REBOOT")), settings(), tables).dump()
    assert (out["counted"], out["owned"]) == (False, False)
    assert tables.nodes[NODE]["reboots"] == []


def test_a_reboot_that_did_not_happen_gives_its_budget_back_once() -> None:
    tables = locked(FakeTables())
    record(node_step(action="REBOOTING", analysis=analysis("REBOOT")), settings(), tables)
    error = {"Error": "Ec2.Ec2Exception", "Cause": "UnauthorizedOperation: not allowed"}
    refund = node_step(action="REBOOT_NOT_PERFORMED", analysis=analysis("REBOOT"), error=error)
    first, retry = (record(refund, settings(), tables).dump() for _ in range(2))
    assert first == retry
    assert first["next"] == "SUSPECT"
    assert tables.nodes[NODE]["reboots"] == []
    (row,) = tables.history(NODE)
    assert row["kind"] == "REBOOT_NOT_PERFORMED"
    assert row["detail"]["reason"].startswith("reboot not performed: Ec2.Ec2Exception")


def test_a_node_released_after_its_reboot_is_repaired_unmarked_and_gives_its_slot_back() -> None:
    tables, ecs = locked(FakeTables()), FakeEcs(under_repair={CI})
    tables.slots[CLUSTER] = {NODE: {"by": EXECUTION_ARN, "until": NOW.isoformat()}}
    release = node_step(action="RELEASE", checkPlan={"phase": "AFTER_REBOOT"}, analysis=analysis("RELEASE"))
    result = record(release, settings(), tables, ecs).dump()
    assert result["outcome"] == "REPAIRED"
    assert "lockOwner" not in tables.nodes[NODE]
    assert tables.nodes[NODE]["status"] == "HEALTHY"
    assert ecs.under_repair == set()
    assert tables.slots[CLUSTER] == {}


def test_a_node_lost_mid_repair_is_reported_lost_and_left_alone() -> None:
    tables, ecs = locked(FakeTables(), OTHER_EXECUTION_ARN), FakeEcs()
    result = record(node_step(action="QUARANTINE", analysis=analysis("QUARANTINE")), settings(), tables, ecs).dump()
    assert result["outcome"] == "LOST"
    assert tables.nodes[NODE]["lockOwner"] == OTHER_EXECUTION_ARN
    assert tables.history(NODE) == []


# ---- RestartJob -----------------------------------------------------------------------------------
def recovering_job(tables: FakeTables, **job: Any) -> FakeTables:
    """ClassifyFailure's records (the failed task and a sibling) and LockJob's lock."""
    for arn, me in ((TASK, EXECUTION_ARN), (SIBLING, None)):
        tables.tasks[arn] = {"taskArn": arn, "jobId": "job-a", "taskDefinitionArn": TASK_DEFINITION} | (
            {"recoveryExecution": me} if me else {}
        )
    tables.jobs["job-a"] = {"jobId": "job-a", "status": "RECOVERING", "lockOwner": EXECUTION_ARN} | job
    return tables


def job_request(*outcomes: str) -> JobRequest:
    nodes = [{"ec2InstanceId": NODE, "containerInstanceArn": CI}, {"ec2InstanceId": OTHER_NODE,
             "containerInstanceArn": OTHER_CI}][: len(outcomes)]  # fmt: skip
    return JobRequest.model_validate(
        {
            "job": {"jobId": "job-a", "tasks": ["0001", "0002"], "survivingTasks": ["0002"], "nodes": nodes},
            "failure": FAILURE,
            "nodeResults": [
                {"nodeId": n["ec2InstanceId"], "outcome": o, "reason": f"test {o}"}
                for n, o in zip(nodes, outcomes, strict=True)
            ],
            "dryRun": False,
            "execution": execution(),
        }
    )


def test_a_repaired_job_is_restarted_once_with_a_token_per_task() -> None:
    tables, ecs = recovering_job(FakeTables()), FakeEcs()
    first = decide_and_restart(job_request("REPAIRED", "HEALTHY"), settings(), ecs, tables)
    retry = decide_and_restart(job_request("REPAIRED", "HEALTHY"), settings(), ecs, tables)
    assert (first.outcome, first.restarted) == ("RESTARTED", 2)
    assert retry == first
    assert [r["clientToken"] for r in ecs.started] == [client_token(EXECUTION_ARN, a) for a in (TASK, SIBLING)]
    assert tables.jobs["job-a"]["restartCount"] == 1
    assert {arn: row["restartedAs"] for arn, row in tables.tasks.items()} == {
        TASK: f"arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/new0001",
        SIBLING: f"arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/new0002",
    }


def test_a_job_whose_gpus_were_healthy_is_not_restarted() -> None:
    tables, ecs = recovering_job(FakeTables()), FakeEcs()
    outcome = decide_and_restart(job_request("HEALTHY", "HEALTHY"), settings(), ecs, tables)
    assert outcome.outcome == "FAILED"
    assert ecs.started == []
    assert tables.jobs["job-a"]["status"] == "FAILED"


def test_a_job_past_its_restart_budget_is_failed() -> None:
    tables, ecs = recovering_job(FakeTables(), restartCount=3), FakeEcs()
    outcome = decide_and_restart(job_request("REPAIRED"), settings(MAX_RESTARTS_PER_JOB="3"), ecs, tables)
    assert (outcome.outcome, outcome.reason) == ("FAILED", "restart budget exhausted (3 of 3)")
    assert ecs.started == []


def test_a_task_that_cannot_start_does_not_stop_the_others() -> None:
    tables, ecs = recovering_job(FakeTables()), FakeEcs()
    tables.tasks[SIBLING]["taskDefinitionArn"] = "arn:aws:ecs:us-east-1:123456789012:task-definition/gone:1"
    ecs.refuse["arn:aws:ecs:us-east-1:123456789012:task-definition/gone:1"] = "ClientException: inactive"
    outcome = decide_and_restart(job_request("REPAIRED"), settings(), ecs, tables)
    assert (outcome.outcome, outcome.restarted) == ("RESTARTED", 1)
    assert outcome.reason.endswith("could not start 1 task(s): 0002: ClientException: inactive")


# ---- HandleError ----------------------------------------------------------------------------------
def test_an_error_releases_only_this_executions_locks_and_suspends_its_nodes() -> None:
    tables, ecs = recovering_job(FakeTables()), FakeEcs()
    tables.lock_node(NODE, CI, EXECUTION_ARN, NOW.isoformat())
    tables.lock_node(OTHER_NODE, OTHER_CI, OTHER_EXECUTION_ARN, NOW.isoformat())
    nodes = [{"ec2InstanceId": NODE, "containerInstanceArn": CI}, {"ec2InstanceId": OTHER_NODE,
             "containerInstanceArn": OTHER_CI}]  # fmt: skip
    state = {"job": {"jobId": "job-a", "nodes": nodes}, "failure": FAILURE,
             "error": {"Error": "States.TaskFailed", "Cause": "boom"}}  # fmt: skip
    report = handle(state, ExecutionContext.model_validate(execution()), ecs, tables)
    assert (report.released_job, report.released_nodes) == (True, [NODE])
    assert tables.jobs["job-a"]["status"] == "ERROR"
    assert "lockOwner" not in tables.jobs["job-a"]
    assert (tables.nodes[NODE]["status"], tables.nodes[OTHER_NODE]["lockOwner"]) == ("SUSPECT", OTHER_EXECUTION_ARN)
    assert ecs.drained == [CI]
    assert tables.tasks[TASK]["recoveryStatus"] == "ERROR"
    assert [row["kind"] for row in tables.history(NODE)] == ["ERROR"]
