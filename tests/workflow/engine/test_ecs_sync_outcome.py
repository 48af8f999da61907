"""Corrections ``ecs_sync_ignores_exit_code`` and ``ecs_run_task_ignores_failures``."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from unittest import mock

import pytest
from engine_harness import StartEngine, ecs_cluster, ecs_tasks_never_stop, failed_event, run, run_check, stop_first_task
from moto.core.responses import ActionResult
from moto.ecs.responses import EC2ContainerServiceResponse

from gpu_recovery.engine.ecs_sync_outcome import RUN_TASK_FAILURES_ERROR

pytestmark = pytest.mark.slow


def _run_check_stopping_with(engine, tmp_path: Path, exit_code: int, catch: bool = False) -> dict:
    cluster = ecs_cluster()
    definition = run_check(cluster)
    if catch:
        definition["States"]["Check"]["Catch"] = [
            {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.failure", "Next": "Analyse"}
        ]
        definition["States"]["Analyse"] = {"Type": "Pass", "End": True}
    with ecs_tasks_never_stop():
        stopper = threading.Thread(target=stop_first_task, args=(exit_code,))
        stopper.start()
        result = run(engine, tmp_path, definition)
        stopper.join()
    return result


def test_moto_still_succeeds_on_a_non_zero_exit(start_engine: StartEngine, tmp_path: Path) -> None:
    """Shows the moto behaviour. If this fails, moto fails .sync on a non-zero exit: drop the correction."""
    engine = start_engine(without=("ecs_sync_ignores_exit_code",))
    assert _run_check_stopping_with(engine, tmp_path, exit_code=3)["status"] == "SUCCEEDED"


def test_exit_zero_succeeds_with_the_task_description(start_engine: StartEngine, tmp_path: Path) -> None:
    result = _run_check_stopping_with(start_engine(), tmp_path, exit_code=0)
    assert result["status"] == "SUCCEEDED", result
    task = json.loads(result["output"])
    assert task["LastStatus"] == "STOPPED"
    assert task["Containers"][0]["ExitCode"] == 0
    assert task["StartedBy"] == "AWS Step Functions"
    assert task["Group"] == "dcgm-check"
    assert task["Overrides"]["ContainerOverrides"][0]["Environment"] == [{"Name": "DIAG_LEVEL", "Value": "2"}]


def test_non_zero_exit_fails_with_task_failed_and_the_task_as_cause(start_engine: StartEngine, tmp_path: Path) -> None:
    engine = start_engine()
    result = _run_check_stopping_with(engine, tmp_path, exit_code=3)
    assert result["status"] == "FAILED"
    assert result["error"] == "States.TaskFailed"
    failed = failed_event(engine, result["executionArn"])
    assert failed["resource"] == "runTask.sync"
    task = json.loads(failed["cause"])
    assert task["LastStatus"] == "STOPPED"
    assert task["Containers"][0]["ExitCode"] == 3


def test_task_failed_is_catchable(start_engine: StartEngine, tmp_path: Path) -> None:
    result = _run_check_stopping_with(start_engine(), tmp_path, exit_code=1, catch=True)
    assert result["status"] == "SUCCEEDED", result
    failure = json.loads(result["output"])["failure"]
    assert failure["Error"] == "States.TaskFailed"
    assert json.loads(failure["Cause"])["Containers"][0]["ExitCode"] == 1


def _run_task_places_nothing(self: EC2ContainerServiceResponse) -> ActionResult:
    # What ECS answers when the memberOf constraint matches no instance with room for the task.
    failures = [{"arn": "arn:aws:ecs:us-east-1:123456789012:container-instance/gpu/x", "reason": "RESOURCE:GPU"}]
    return ActionResult({"tasks": [], "failures": failures})


def test_moto_still_crashes_when_run_task_places_nothing(start_engine: StartEngine, tmp_path: Path) -> None:
    """Shows the moto behaviour. If this fails, moto handles RunTask failures: drop the correction."""
    engine = start_engine(without=("ecs_run_task_ignores_failures",))
    with mock.patch.object(EC2ContainerServiceResponse, "run_task", _run_task_places_nothing):
        result = run(engine, tmp_path, run_check(ecs_cluster()))
    assert result["error"] == "States.Runtime"


def test_run_task_failures_fail_the_sync_state(start_engine: StartEngine, tmp_path: Path) -> None:
    engine = start_engine()
    with mock.patch.object(EC2ContainerServiceResponse, "run_task", _run_task_places_nothing):
        result = run(engine, tmp_path, run_check(ecs_cluster()))
    assert result["status"] == "FAILED"
    assert result["error"] == RUN_TASK_FAILURES_ERROR
    cause = json.loads(failed_event(engine, result["executionArn"])["cause"])
    assert cause == {"Tasks": [], "Failures": [{"Arn": cause["Failures"][0]["Arn"], "Reason": "RESOURCE:GPU"}]}
