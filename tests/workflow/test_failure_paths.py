"""The workflow's unhappy paths, end to end on the local engine: a malformed input, and an unexpected error in
the middle of a recovery (the one error handler releases the locks, alerts, and the execution fails with the
original error)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest

from gpu_recovery import scenario as scenarios
from gpu_recovery.local_stack import LocalStack
from gpu_recovery.sim import SimFleet
from gpu_recovery.simulate import deployed

pytestmark = pytest.mark.slow


@pytest.fixture
def stack_and_fleet() -> Iterator[tuple[LocalStack, SimFleet]]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        with deployed(scenarios.load("transient-xid79"), speed=400) as (stack, fleet, _clock):
            yield stack, fleet


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


def test_error_while_a_node_is_locked_leaves_it_suspect_and_unlocked(
    stack_and_fleet: tuple[LocalStack, SimFleet],
) -> None:
    stack, fleet = stack_and_fleet
    (task,) = fleet.job_tasks("job-a")
    event = fleet.fail_task(task, exit_code=1)
    # Recording the node's outcome breaks after its reboot: nobody knows its state, so a human must look.
    with mock.patch("record_node_state.finish_node", side_effect=RuntimeError("table gone")):
        arn = stack.engine.start_execution(stack.state_machine_arn, "breaks-in-node", event)
        description = stack.engine.wait(arn)
    assert description["status"] == "FAILED"
    assert description["error"] == "RuntimeError"
    assert _path(stack, arn)[-4:] == ["ReleaseNode", "HandleError", "NotifyRecoveryError", "RecoveryFailed"]
    state = next(row for row in _items(stack.config.NODE_TABLE_NAME) if row["recordKey"] == "STATE")
    assert state["status"] == "SUSPECT"
    assert "lockOwner" not in state
    assert any(row.get("kind") == "ERROR" for row in _items(stack.config.NODE_TABLE_NAME))
