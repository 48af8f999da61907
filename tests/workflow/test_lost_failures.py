"""No failure is lost between executions: a classification that keeps failing still tells people which task to
recover and how, a throttled one is retried, and a task that joins a recovery after RestartJob read the job is
restarted before the job lock is released. End to end on the local engine, faults from ``api_faults``."""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import boto3
import pytest
import restart_job

from gpu_recovery.api_faults import ApiFault
from gpu_recovery.engine.iam_not_enforced import acting_as
from gpu_recovery.local_stack import LocalStack
from gpu_recovery.sim import SimFleet

pytestmark = pytest.mark.slow


def _path(stack: LocalStack, arn: str) -> list[str]:
    return [visit.name for visit in stack.engine.path(arn)]


def _throttle_classification(stack: LocalStack, fleet: SimFleet, **limit: Any) -> None:
    """ClassifyFailure's one write (the task and its job, one transaction) is throttled past its SDK retries."""
    rule = ApiFault.model_validate({"api": "dynamodb:TransactWriteItems", "error": "throttling", **limit})
    stack.engine.faults.load([rule], {})


def _job(stack: LocalStack) -> dict[str, Any]:
    (job,) = boto3.resource("dynamodb").Table(stack.config.JOB_TABLE_NAME).scan()["Items"]
    return job


def test_a_classification_throttled_past_its_sdk_retries_is_retried_and_recovers(
    stack_and_fleet: tuple[LocalStack, SimFleet],
) -> None:
    stack, fleet = stack_and_fleet
    # Four throttled attempts: all the SDK makes in one invocation (botocore's standard and adaptive retry modes
    # allow DynamoDB 4 attempts, botocore/retries/standard.py).
    _throttle_classification(stack, fleet, count=4)
    (task,) = fleet.job_tasks("job-a")
    arn = stack.engine.start_execution(stack.state_machine_arn, "throttled", fleet.fail_task(task, exit_code=1))
    assert stack.engine.wait(arn)["status"] == "SUCCEEDED"
    failed = [text for e in stack.engine.history(arn) if "FailedEventDetails" in (text := json.dumps(e, default=str))]
    assert sum('"error": "Throttled"' in e for e in failed) == 1, failed
    assert _path(stack, arn).count("ClassifyFailure") == 1  # a retry, not a second visit
    assert _job(stack)["status"] == "RUNNING"


def test_a_classification_that_keeps_failing_says_which_task_to_recover_and_how(
    stack_and_fleet: tuple[LocalStack, SimFleet],
) -> None:
    stack, fleet = stack_and_fleet
    _throttle_classification(stack, fleet, rate=1)
    (task,) = fleet.job_tasks("job-a")
    event = fleet.fail_task(task, exit_code=1)
    arn = stack.engine.start_execution(stack.state_machine_arn, "keeps-failing", event)
    description = stack.engine.wait(arn)
    assert description["status"] == "FAILED"
    assert description["error"] == "Throttled"
    assert _path(stack, arn) == ["ClassifyFailure", "HandleError", "NotifyRecoveryError", "RecoveryFailed"]
    (alert,) = stack.notifications()
    message = json.loads(alert["message"])
    task_arn = event["detail"]["taskArn"]
    assert json.loads(message["default"])["rerun"] == f"gpu-recovery start {task_arn}"
    assert f"To recover it again: gpu-recovery start {task_arn}" in message["email"]


def test_a_task_that_joins_after_restart_job_read_the_job_is_not_left_behind(
    stack_and_fleet: tuple[LocalStack, SimFleet],
) -> None:
    stack, fleet = stack_and_fleet
    (task,) = fleet.job_tasks("job-a")
    event = fleet.fail_task(task, exit_code=1)
    late = task[:-4] + "late"
    decide = restart_job.decide_and_restart

    def decide_then_a_task_joins(*args: Any) -> Any:
        """RestartJob decides; then, at this fixed point of the simulation (on the execution's own thread, before
        ReleaseJob), another execution records a task of the job joining, as JoinExistingRecovery writes it."""
        outcome = decide(*args)
        with acting_as(None):
            tasks = boto3.resource("dynamodb").Table(stack.config.TASK_TABLE_NAME)
            record = tasks.get_item(Key={"taskArn": task})["Item"]
            tasks.put_item(Item={k: v for k, v in record.items() if k != "restartedAs"} | {"taskArn": late})
            boto3.resource("dynamodb").Table(stack.config.JOB_TABLE_NAME).update_item(
                Key={"jobId": "job-a"},
                UpdateExpression="SET joinedTasks = list_append(if_not_exists(joinedTasks, :n), :t) ADD joins :one",
                ConditionExpression="lockOwner = :owner",
                ExpressionAttributeValues={":n": [], ":t": [late], ":one": 1, ":owner": args[0].execution.id},
            )
        return outcome

    with mock.patch("restart_job.decide_and_restart", side_effect=decide_then_a_task_joins):
        arn = stack.engine.start_execution(stack.state_machine_arn, "late-join", event)
        assert stack.engine.wait(arn)["status"] == "SUCCEEDED"
    assert _path(stack, arn)[-7:] == [
        "NotifyRecoveryResult", "ReleaseJob", "AnyLateJoinRoundsLeft", "RestartLateJoiners", "NotifyRecoveryResult",
        "ReleaseJob", "RecoveryComplete",
    ]  # fmt: skip
    _, late_round = stack.notifications()
    email = json.loads(late_round["message"])["email"]
    assert late in email
    assert "1 task(s) joined after the job was decided (RESTARTED)" in email
    job = _job(stack)
    assert "lockOwner" not in job
    assert "joinedTasks" not in job
    assert job["joins"] == 1
