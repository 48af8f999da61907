"""Correction ``history_unbounded``: an execution ends at 25,000 history events, as in AWS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from engine_harness import StartEngine, run
from moto.stepfunctions.parser.api import HistoryEventType
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext, EventManager

from gpu_recovery.engine.history_unbounded import HISTORY_LIMIT_CAUSE, MAX_HISTORY_EVENTS, correct_history_unbounded

pytestmark = pytest.mark.slow


def counting_loop(iterations: int) -> dict[str, Any]:
    """Entered and exited events for each Pass and Choice: 4 per iteration, and 4 more for the whole execution
    (ExecutionStarted, the Succeed state's two, ExecutionSucceeded)."""
    return {
        "StartAt": "Count",
        "States": {
            "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "Done?"},
            "Done?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericGreaterThanEquals": iterations, "Next": "Done"}],
                "Default": "Count",
            },
            "Done": {"Type": "Succeed"},
        },
    }


def record(manager: EventManager, events: int) -> None:
    context = EventHistoryContext.of_program_start()
    for _ in range(events):
        manager.add_event(context, HistoryEventType.PassStateEntered)


def test_moto_still_records_more_than_the_limit() -> None:
    """Shows the moto behaviour. If this fails, moto bounds the history: drop the correction."""
    manager = EventManager()
    record(manager, MAX_HISTORY_EVENTS + 1)
    assert len(manager.get_event_history()) == MAX_HISTORY_EVENTS + 1


def test_event_25000_is_the_failure_and_nothing_follows() -> None:
    manager = EventManager()
    with correct_history_unbounded():
        record(manager, MAX_HISTORY_EVENTS + 10)
    history = manager.get_event_history()
    assert len(history) == MAX_HISTORY_EVENTS
    assert history[-1]["id"] == MAX_HISTORY_EVENTS
    assert history[-1]["type"] == HistoryEventType.ExecutionFailed
    assert history[-1]["executionFailedEventDetails"] == {"error": "States.Runtime", "cause": HISTORY_LIMIT_CAUSE}


def test_an_endless_loop_fails_at_the_limit(start_engine: StartEngine, tmp_path: Path) -> None:
    engine = start_engine(without=("history_unbounded",))
    with correct_history_unbounded(limit=101):
        result = run(engine, tmp_path, counting_loop(10**9), {"n": 0})
    assert (result["status"], result["error"], result["cause"]) == ("FAILED", "States.Runtime", HISTORY_LIMIT_CAUSE)
    history = engine.history(result["executionArn"])
    assert [e["id"] for e in history] == list(range(1, 102))
    assert history[-1]["type"] == "ExecutionFailed"


@pytest.mark.parametrize(("iterations", "status"), [(4, "SUCCEEDED"), (5, "FAILED")])
def test_only_success_may_be_the_last_event(
    start_engine: StartEngine, tmp_path: Path, iterations: int, status: str
) -> None:
    """4 iterations: ExecutionStarted, 4 x (Pass, Choice) entered/exited, Succeed entered/exited, ExecutionSucceeded
    = 20 events, the limit here: event 20 is ExecutionSucceeded and counts. One more iteration fails at event 20."""
    engine = start_engine(without=("history_unbounded",))
    with correct_history_unbounded(limit=20):
        result = run(engine, tmp_path, counting_loop(iterations), {"n": 0})
    assert result["status"] == status
    history = engine.history(result["executionArn"])
    assert len(history) == 20


def test_a_map_iteration_stops_with_the_execution(start_engine: StartEngine, tmp_path: Path) -> None:
    """Frames share the execution's history: the limit fails the whole execution, iterations included."""
    engine = start_engine(without=("history_unbounded",))
    definition = {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"n": 0},
                "ItemProcessor": counting_loop(10**9),
                "End": True,
            }
        },
    }
    with correct_history_unbounded(limit=200):
        result = run(engine, tmp_path, definition, {"items": [1, 2, 3]})
    assert (result["status"], result["error"], result["cause"]) == ("FAILED", "States.Runtime", HISTORY_LIMIT_CAUSE)
    assert engine.history(result["executionArn"])[-1]["type"] == "ExecutionFailed"
