"""Corrections in ``real_time_waits``: moto's threads, Wait, Retry, the .sync poll, timeouts and history on the
SimClock's scheduler."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from engine_harness import StartEngine, ecs_cluster, ecs_tasks_never_stop, failed_event, run, run_check

from gpu_recovery.clock import EPOCH, SimClock
from gpu_recovery.engine.real_time_waits import SYNC_POLL_SIM_SECONDS

pytestmark = pytest.mark.slow


def wait_machine(**wait: object) -> dict:
    return {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "End": True, **wait}}}


def test_moto_still_waits_in_real_time(start_engine: StartEngine, clock: SimClock, tmp_path: Path) -> None:
    """Shows the moto behaviour. If this fails, moto no longer sleeps a Wait in real time: revisit the correction."""
    engine = start_engine(without=("wait_state_real_time", "threads_real_time"))
    started = time.monotonic()
    assert run(engine, tmp_path, wait_machine(Seconds=1))["status"] == "SUCCEEDED"
    assert time.monotonic() - started >= 1.0
    assert clock.elapsed() == 0.0


def test_wait_of_600_s_advances_the_sim_clock_by_600(
    start_engine: StartEngine, clock: SimClock, tmp_path: Path
) -> None:
    engine = start_engine()
    started = time.monotonic()
    result = run(engine, tmp_path, wait_machine(Seconds=600))
    real = time.monotonic() - started
    assert result["status"] == "SUCCEEDED"
    assert clock.elapsed() == 600.0
    assert real < 5.0  # nothing sleeps in real time


@pytest.mark.parametrize(
    ("wait", "execution_input"),
    [
        ({"SecondsPath": "$.seconds"}, {"seconds": 120}),
        ({"Timestamp": "2026-01-01T00:02:00Z"}, {}),
        ({"TimestampPath": "$.at"}, {"at": "2026-01-01T00:02:00Z"}),
    ],
)
def test_wait_variants_count_on_the_sim_clock(
    start_engine: StartEngine, clock: SimClock, tmp_path: Path, wait: dict, execution_input: dict
) -> None:
    assert clock.now() == EPOCH
    result = run(start_engine(), tmp_path, wait_machine(**wait), execution_input)
    assert result["status"] == "SUCCEEDED", result
    assert clock.elapsed() == 120.0


def retry_machine(function: str, interval: int, attempts: int) -> dict:
    call = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function, "Payload": {}},
        "Retry": [
            {"ErrorEquals": ["InvalidInput"], "IntervalSeconds": interval, "MaxAttempts": attempts, "BackoffRate": 3}
        ],
        "End": True,
    }
    return {"StartAt": "Call", "States": {"Call": call}}


def test_moto_still_sleeps_retry_intervals_in_real_time(
    start_engine: StartEngine, clock: SimClock, tmp_path: Path
) -> None:
    """Shows the moto behaviour. If this fails, moto no longer sleeps Retry intervals: revisit the correction."""
    engine = start_engine(without=("retry_interval_real_time",))
    engine.deploy_function("reject", "engine_test_handlers.reject", {})
    started = time.monotonic()
    assert run(engine, tmp_path, retry_machine("reject", interval=1, attempts=1))["error"] == "InvalidInput"
    assert time.monotonic() - started >= 1.0
    assert clock.elapsed() == 0.0


def test_retry_intervals_with_backoff_advance_the_sim_clock(
    start_engine: StartEngine, clock: SimClock, tmp_path: Path
) -> None:
    engine = start_engine()
    engine.deploy_function("reject", "engine_test_handlers.reject", {})
    result = run(engine, tmp_path, retry_machine("reject", interval=10, attempts=3))
    assert result["error"] == "InvalidInput"
    assert clock.elapsed() == 10 + 30 + 90


def test_moto_still_polls_sync_tasks_in_real_time(start_engine: StartEngine, clock: SimClock, tmp_path: Path) -> None:
    """Shows the moto behaviour. If this fails, moto's .sync poll changed: revisit the correction."""
    engine = start_engine(without=("sync_poll_real_time",))
    started = time.monotonic()
    assert run(engine, tmp_path, run_check(ecs_cluster()))["status"] == "SUCCEEDED"
    # moto stops a task after a few DescribeTasks, 0.5 real seconds apart, while simulated time stands still.
    assert time.monotonic() - started >= 0.5
    assert clock.elapsed() == 0.0


def test_sync_polls_advance_the_sim_clock(start_engine: StartEngine, clock: SimClock, tmp_path: Path) -> None:
    engine = start_engine()
    result = run(engine, tmp_path, run_check(ecs_cluster()))
    assert result["status"] == "SUCCEEDED"
    assert clock.elapsed() > 0
    assert clock.elapsed() % SYNC_POLL_SIM_SECONDS == 0


def test_moto_still_runs_threads_and_timeouts_in_real_time(
    start_engine: StartEngine, clock: SimClock, tmp_path: Path
) -> None:
    """Shows the moto behaviour. If this fails, moto's threads or task timeouts changed: revisit the correction."""
    engine = start_engine(without=("threads_real_time",))
    with ecs_tasks_never_stop():
        result = run(engine, tmp_path, run_check(ecs_cluster(), timeout_seconds=1))
    assert result["error"] == "States.Timeout"
    # One real second of polling ran the simulated clock far past the 1 s TimeoutSeconds.
    assert clock.elapsed() > 20 * SYNC_POLL_SIM_SECONDS


def test_hung_sync_task_times_out_in_sim_time(start_engine: StartEngine, clock: SimClock, tmp_path: Path) -> None:
    engine = start_engine()
    started = time.monotonic()
    with ecs_tasks_never_stop():
        result = run(engine, tmp_path, run_check(ecs_cluster(), timeout_seconds=900))
    real = time.monotonic() - started
    assert result["status"] == "FAILED"
    assert result["error"] == "States.Timeout"
    assert failed_event(engine, result["executionArn"])["error"] == "States.Timeout"
    # The poll that would have ended after the deadline never runs: the timeout fires at exactly 900 s.
    assert clock.elapsed() == 900
    assert real < 10.0


def test_execution_timeout_counts_sim_seconds(start_engine: StartEngine, clock: SimClock, tmp_path: Path) -> None:
    result = run(start_engine(), tmp_path, {**wait_machine(Seconds=600), "TimeoutSeconds": 300})
    assert result["status"] == "TIMED_OUT"
    assert clock.elapsed() == 300


def map_of_waits(seconds: list[int]) -> tuple[dict, dict]:
    iteration = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "SecondsPath": "$", "End": True}}}
    each = {"Type": "Map", "ItemsPath": "$.items", "ItemProcessor": iteration, "End": True}
    return {"StartAt": "Each", "States": {"Each": each}}, {"items": seconds}


def test_map_iterations_wait_concurrently_in_sim_time(
    start_engine: StartEngine, clock: SimClock, tmp_path: Path
) -> None:
    engine = start_engine()
    definition, execution_input = map_of_waits([300, 100, 200])
    result = run(engine, tmp_path, definition, execution_input)
    assert result["status"] == "SUCCEEDED"
    assert clock.elapsed() == 300
    waits = [v for v in engine.path(result["executionArn"]) if v.name == "Wait"]
    assert sorted((v.iteration, v.exited_at_sim) for v in waits) == [(0, 300.0), (1, 100.0), (2, 200.0)]


def test_stop_execution_ends_a_wait_at_once(start_engine: StartEngine, clock: SimClock, tmp_path: Path) -> None:
    engine = start_engine()
    asl = tmp_path / "definition.asl.json"
    asl.write_text(json.dumps(wait_machine(Seconds=3600)))
    machine = engine.deploy_state_machine("stoppable", asl, {})
    with clock.taking_part():  # the operator acts at simulated second 60, in the middle of the Wait
        arn = engine.start_execution(machine, "run-1", {})
        clock.sleep(60)
        boto3.client("stepfunctions").stop_execution(executionArn=arn, error="Operator", cause="stopped by hand")
    result = engine.wait(arn)
    assert result["status"] == "ABORTED"
    assert clock.elapsed() == 60


def test_moto_still_stamps_history_with_the_wall_clock(start_engine: StartEngine, tmp_path: Path) -> None:
    """Shows the moto behaviour. If this fails, moto's history timestamps changed: revisit the correction."""
    engine = start_engine(without=("history_wall_clock",))
    result = run(engine, tmp_path, wait_machine(Seconds=600))
    stamps = [event["timestamp"] for event in engine.history(result["executionArn"])]
    assert abs((stamps[-1] - datetime.now(UTC)).total_seconds()) < 60


def test_history_and_path_carry_sim_time(start_engine: StartEngine, tmp_path: Path) -> None:
    engine = start_engine()
    result = run(engine, tmp_path, wait_machine(Seconds=600))
    stamps = [event["timestamp"] for event in engine.history(result["executionArn"])]
    assert stamps[0] == EPOCH
    assert (stamps[-1] - stamps[0]).total_seconds() == 600
    [visit] = engine.path(result["executionArn"])
    assert (visit.name, visit.entered_at_sim, visit.exited_at_sim, visit.iteration) == ("Wait", 0.0, 600.0, None)


def token_machine(function: str, timeout: int) -> dict:
    wait = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {"FunctionName": function, "Payload": {"token.$": "$$.Task.Token"}},
        "TimeoutSeconds": timeout,
        "End": True,
    }
    return {"StartAt": "Wait", "States": {"Wait": wait}}


def test_moto_still_waits_for_a_task_token_in_real_time(
    start_engine: StartEngine, clock: SimClock, tmp_path: Path
) -> None:
    """Shows the moto behaviour. If this fails, moto no longer waits for a task token on a real threading.Event:
    revisit callback_wait_real_time."""
    engine = start_engine(without=("callback_wait_real_time",))
    function = engine.deploy_function("ignore", "engine_test_handlers.ignore_token", {})
    started = time.monotonic()
    result = run(engine, tmp_path, token_machine(function, 1))
    assert result["status"] == "FAILED"
    assert time.monotonic() - started >= 1.0


def test_task_token_timeout_counts_on_the_sim_clock(start_engine: StartEngine, clock: SimClock, tmp_path: Path) -> None:
    engine = start_engine()
    function = engine.deploy_function("ignore", "engine_test_handlers.ignore_token", {})
    started = time.monotonic()
    result = run(engine, tmp_path, token_machine(function, 900))
    assert (result["status"], result.get("error")) == ("FAILED", "States.Timeout")
    assert clock.elapsed() == pytest.approx(900.0, abs=1.0)
    assert time.monotonic() - started < 5.0


def test_send_task_success_ends_the_wait_with_its_output(
    start_engine: StartEngine, clock: SimClock, tmp_path: Path
) -> None:
    engine = start_engine()
    function = engine.deploy_function("complete", "engine_test_handlers.complete_own_token", {})
    result = run(engine, tmp_path, token_machine(function, 900))
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"done": True}
    assert clock.elapsed() < 1.0
