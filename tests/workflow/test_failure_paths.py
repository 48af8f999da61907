"""The workflow's unhappy paths, end to end on the local engine: a malformed input; an unexpected error in the
middle of a recovery (the one error handler releases the locks, alerts, and the execution fails with the
original error); executions that end badly, whose leftovers CleanupExecution puts right (their "Execution
Status Change" event goes through the cleanup rule's pattern); a failing error handler that still alerts; and
locks of an owner that no longer runs, taken over rather than joined."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import boto3
import pytest

from gpu_recovery import scenario as scenarios
from gpu_recovery.engine.iam_not_enforced import acting_as
from gpu_recovery.local_stack import LocalStack
from gpu_recovery.scenario import Event
from gpu_recovery.sim import SimFleet
from gpu_recovery.simulate import _fail, _wait_for_action, deployed

pytestmark = pytest.mark.slow


def _items(table: str) -> list[dict[str, Any]]:
    return list(boto3.resource("dynamodb").Table(table).scan()["Items"])


def _path(stack: LocalStack, arn: str) -> list[str]:
    return [visit.name for visit in stack.engine.path(arn)]


@pytest.mark.parametrize(
    ("request_input", "message"),
    [
        ({"hello": "world"}, "neither an ECS Task State Change event"),
        ({"source": "aws.ecs", "detail-type": "ECS Task State Change", "detail": {}}, "detail.taskArn"),
        ({"taskArn": "not-an-arn"}, "is not an ECS task ARN"),
        (
            {"taskArn": "arn:aws:ecs:us-east-1:123456789012:task/gpu-cluster/0123456789abcdef0123456789abcdef"},
            "not found in cluster gpu-cluster",
        ),
    ],
)
def test_malformed_input_fails_as_invalid_input_and_writes_nothing(
    stack_and_fleet: tuple[LocalStack, SimFleet], request_input: dict[str, Any], message: str
) -> None:
    stack, _ = stack_and_fleet
    arn = stack.engine.start_execution(stack.state_machine_arn, "bad-input", request_input)
    description = stack.engine.wait(arn)
    assert description["status"] == "FAILED"
    assert description["error"] == "InvalidInput"
    assert message in description["cause"]
    assert _path(stack, arn) == ["ClassifyFailure", "RejectInvalidInput"]
    config = stack.config
    assert _items(config.TASK_TABLE_NAME) == []
    assert _items(config.JOB_TABLE_NAME) == []
    assert _items(config.NODE_TABLE_NAME) == []
    assert stack.notifications() == []


def test_unexpected_error_releases_locks_alerts_and_fails_with_the_original_error(
    stack_and_fleet: tuple[LocalStack, SimFleet],
) -> None:
    stack, fleet = stack_and_fleet
    (task,) = fleet.job_tasks("job-a")
    event = fleet.fail_task(task, exit_code=1)
    # The restart step breaks after every node was repaired: the locks it holds must not outlive it.
    with mock.patch("restart_job.decide_and_restart", side_effect=RuntimeError("restart exploded")):
        arn = stack.engine.start_execution(stack.state_machine_arn, "breaks-in-restart", event)
        description = stack.engine.wait(arn)
    assert description["status"] == "FAILED"
    assert description["error"] == "RuntimeError"
    assert "restart exploded" in description["cause"]
    assert _path(stack, arn)[-4:] == ["RestartJob", "HandleError", "NotifyRecoveryError", "RecoveryFailed"]
    (job,) = _items(stack.config.JOB_TABLE_NAME)
    assert job["status"] == "ERROR"
    assert "lockOwner" not in job
    state = next(row for row in _items(stack.config.NODE_TABLE_NAME) if row["recordKey"] == "STATE")
    assert "lockOwner" not in state
    (task_row,) = _items(stack.config.TASK_TABLE_NAME)
    assert task_row["recoveryStatus"] == "ERROR"
    (alert,) = stack.notifications()
    assert alert["subject"].startswith("[GPU Recovery] ERROR job-a: RuntimeError")
    assert json.loads(json.loads(alert["message"])["default"])["error"] == "RuntimeError"


def test_error_recording_a_node_is_that_nodes_it_stays_drained_and_people_are_told(
    stack_and_fleet: tuple[LocalStack, SimFleet],
) -> None:
    stack, fleet = stack_and_fleet
    (task,) = fleet.job_tasks("job-a")
    event = fleet.fail_task(task, exit_code=1)
    # Recording the node's outcome breaks after its reboot, and so does recording it SUSPECT: its own Catch
    # (NodeNotRecorded) keeps it drained and says in its result what a human must still do.
    with mock.patch("record_node_state.finish_node", side_effect=RuntimeError("table gone")):
        arn = stack.engine.start_execution(stack.state_machine_arn, "breaks-in-node", event)
        description = stack.engine.wait(arn)
    assert description["status"] == "SUCCEEDED"
    path = " ".join(_path(stack, arn))
    assert "ReleaseNode NodeStepFailed MarkNodeSuspect NodeNotRecorded DrainSuspectNode NodeChecked" in path
    assert "HandleError" not in path
    assert _container_instance_status(fleet) == "DRAINING"
    (job,) = _items(stack.config.JOB_TABLE_NAME)
    assert job["status"] == "FAILED"  # not restarted onto a node nobody verified
    assert "lockOwner" not in job
    (report,) = stack.notifications()
    email = json.loads(report["message"])["email"]
    assert f"LEFT TO DO: record and release it: gpu-recovery locks release {arn}" in email
    assert "(RuntimeError)" in email


def test_one_nodes_failed_step_is_recorded_and_reported_while_the_others_go_on() -> None:
    with deployed(scenarios.load("four-node-one-bad")) as (stack, fleet, _clock):
        event = _fail(fleet, Event(job="job-a", node="node-3", exit_code=1))
        # Only the bad node reboots: its RecordReboot step breaks, the three healthy nodes are not touched.
        with mock.patch("record_node_state.record_reboot", side_effect=RuntimeError("reboot not recorded")):
            arn = stack.engine.start_execution(stack.state_machine_arn, "one-node-breaks", event)
            description = stack.engine.wait(arn)
        assert description["status"] == "SUCCEEDED"
        path = _path(stack, arn)
        assert path.count("ReleaseNode") == 3
        assert "HandleError" not in path
        states = {row["nodeId"]: row for row in _items(stack.config.NODE_TABLE_NAME) if row["recordKey"] == "STATE"}
        bad = fleet.instance_id("node-3")
        assert states[bad]["status"] == "SUSPECT"
        assert "RuntimeError" in states[bad]["reason"]
        assert "lockOwner" not in states[bad]
        assert {s["status"] for node, s in states.items() if node != bad} == {"HEALTHY"}
        (report,) = stack.notifications()
        assert bad in report["message"]
        assert "RuntimeError" in report["message"]


REAL_SECONDS = 120.0


def _state(stack: LocalStack) -> dict[str, Any]:
    return next(row for row in _items(stack.config.NODE_TABLE_NAME) if row["recordKey"] == "STATE")


def _stop_as_operator(arn: str) -> None:
    """An operator's StopExecution. The operator is no principal of the stack: made from inside a step Lambda, the
    call would otherwise be authorized as that function's role (iam_not_enforced), which may not stop executions."""
    with acting_as(None):
        boto3.client("stepfunctions").stop_execution(executionArn=arn, error="Operator", cause="stopped by hand")


def _abort(arn: str) -> None:
    """An operator stops the execution while this step runs (a side effect of a mocked step: a fixed point of the
    simulation, on the execution's own thread); what the step returns no longer matters."""
    _stop_as_operator(arn)
    raise RuntimeError("stopped")


def _abort_when(fleet: SimFleet, arn: str, action: str, target: str) -> None:
    """Stop the execution (as an operator would) at the simulated moment the fleet sees `action target`.

    Call it inside ``clock.taking_part()``: the wait is on the simulated clock and gives up the turn, so the stop
    comes when the step that did `action` blocks (e.g. its `.sync` poll), the same point on every run."""
    _wait_for_action(fleet, f"{action} {target}")
    _stop_as_operator(arn)


def _container_instance_status(fleet: SimFleet) -> str:
    ecs = boto3.client("ecs")
    arns = ecs.list_container_instances(cluster=fleet.cluster_arn)["containerInstanceArns"]
    return str(
        ecs.describe_container_instances(cluster=fleet.cluster_arn, containerInstances=arns)["containerInstances"][0][
            "status"
        ]
    )


def test_when_error_handling_fails_too_people_are_told_and_cleanup_releases_everything(
    stack_and_fleet: tuple[LocalStack, SimFleet],
) -> None:
    stack, fleet = stack_and_fleet
    (task,) = fleet.job_tasks("job-a")
    event = fleet.fail_task(task, exit_code=1)
    # The node was rebooted; recording its outcome fails (it stays locked, drained, in its result), deciding the
    # job fails, and so does HandleError (a throttled table).
    with (
        mock.patch("record_node_state.finish_node", side_effect=RuntimeError("table gone")),
        mock.patch("restart_job.decide_and_restart", side_effect=RuntimeError("table gone")),
        mock.patch("handle_error.handle", side_effect=RuntimeError("throttled")),
    ):
        arn = stack.engine.start_execution(stack.state_machine_arn, "double-fault", event)
        assert stack.wait(arn, REAL_SECONDS)["status"] == "FAILED"
    path = [visit.name for visit in stack.engine.path(arn)]
    assert path[-3:] == ["HandleError", "NotifyLastResort", "RecoveryFailed"]

    (job,) = _items(stack.config.JOB_TABLE_NAME)
    assert "lockOwner" not in job
    assert job["status"] == "ERROR"
    state = _state(stack)
    assert "lockOwner" not in state
    assert state["status"] == "SUSPECT"  # rebooted but never verified: a human looks before it takes work
    assert _container_instance_status(fleet) == "DRAINING"
    subjects = [n["subject"] for n in stack.notifications()]
    assert subjects == [
        "[GPU Recovery] ERROR: a recovery failed and so did its error handling",
        "[GPU Recovery] ERROR job-a: recovery FAILED",
    ]


def test_job_lock_of_an_aborted_execution_is_released(stack_and_fleet: tuple[LocalStack, SimFleet]) -> None:
    stack, fleet = stack_and_fleet
    (task,) = fleet.job_tasks("job-a")
    arn = stack.engine.start_execution(stack.state_machine_arn, "aborted", fleet.fail_task(task, exit_code=1))
    # An operator stops the execution while it decides the job, after every node was released.
    with mock.patch("restart_job.decide_and_restart", side_effect=lambda *_: _abort(arn)):
        status = stack.wait(arn, REAL_SECONDS)["status"]
    # AWS ends it ABORTED, before HandleError; moto 5.2.5 ends a stopped execution FAILED, also before it.
    assert status in {"ABORTED", "FAILED"}
    assert "HandleError" not in [visit.name for visit in stack.engine.path(arn)]
    (job,) = _items(stack.config.JOB_TABLE_NAME)
    assert "lockOwner" not in job
    assert job["status"] == "ERROR"
    assert status in job["lastReason"]
    (alert,) = stack.notifications()
    assert alert["subject"] == f"[GPU Recovery] ERROR job-a: recovery {status}"


def test_locks_of_an_owner_that_no_longer_runs_are_taken_over(stack_and_fleet: tuple[LocalStack, SimFleet]) -> None:
    stack, fleet = stack_and_fleet
    (task,) = fleet.job_tasks("job-a")
    event = fleet.fail_task(task, exit_code=1)
    # The test takes part in the simulation from the start, as the scenario runner does: the execution cannot run
    # ahead of it, and it stops the execution while node-1's DCGM check runs.
    with stack.engine.clock.taking_part():
        dead = stack.engine.start_execution(stack.state_machine_arn, "dies", event)
        _abort_when(fleet, dead, "dcgm_check_started", "node-1")
    # No cleanup here (its event lost, or the cleanup itself failed): the locks stay with the dead execution.
    # (AWS ends it ABORTED; moto 5.2.5 ends an execution stopped inside a Map iteration FAILED.)
    assert stack.engine.wait(dead, REAL_SECONDS)["status"] in {"ABORTED", "FAILED"}
    assert fleet.actions()["reboots"] == {}  # it died during the check: the node was left unrepaired
    assert _state(stack)["lockOwner"] == dead

    manual = {"taskArn": event["detail"]["taskArn"], "reason": "retry after the aborted recovery"}
    arn = stack.engine.start_execution(stack.state_machine_arn, "takes-over", manual)
    assert stack.wait(arn, REAL_SECONDS)["status"] == "SUCCEEDED"
    path = [visit.name for visit in stack.engine.path(arn)]
    assert "TakeOverJobLock" in path
    assert "JoinExistingRecovery" not in path
    assert "RebootInstance" in path, " ".join(path)  # the node was repaired, not left to the dead owner
    history = [row for row in _items(stack.config.NODE_TABLE_NAME) if row.get("kind") == "LOCK_TAKEN_OVER"]
    assert [row["executionArn"] for row in history] == [arn]
    (job,) = _items(stack.config.JOB_TABLE_NAME)
    assert "lockOwner" not in job
    assert job["status"] == "RUNNING"


def test_operator_quarantine_mid_recovery_is_never_overwritten(stack_and_fleet: tuple[LocalStack, SimFleet]) -> None:
    stack, fleet = stack_and_fleet
    (task,) = fleet.job_tasks("job-a")
    # The test takes part in the simulation: the quarantine comes at the simulated moment node-1's check starts
    # (its runTask.sync poll blocks), the same point on every run.
    with stack.engine.clock.taking_part():
        arn = stack.engine.start_execution(stack.state_machine_arn, "loses-node", fleet.fail_task(task, exit_code=1))
        _wait_for_action(fleet, "dcgm_check_started node-1")
        # `gpu-recovery node quarantine --force` while the check runs: status QUARANTINED, the lock cleared.
        node_id = fleet.instance_id("node-1")
        table = boto3.resource("dynamodb").Table(stack.config.NODE_TABLE_NAME)
        table.update_item(
            Key={"nodeId": node_id, "recordKey": "STATE"},
            UpdateExpression="SET #s = :q, reason = :r REMOVE lockOwner",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":q": "QUARANTINED", ":r": "quarantined by an operator"},
        )
    assert stack.wait(arn, REAL_SECONDS)["status"] == "SUCCEEDED"
    path = _path(stack, arn)
    assert "NodeLockLost" in path
    assert not {"DrainNode", "RebootInstance", "ReactivateNode"} & set(path)
    assert fleet.actions()["reboots"] == {}
    assert _state(stack)["status"] == "QUARANTINED"
    (job,) = _items(stack.config.JOB_TABLE_NAME)
    assert job["status"] == "FAILED"  # not restarted onto a node a human took out of service
