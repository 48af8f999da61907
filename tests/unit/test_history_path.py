"""history_path: which Map iteration each state visit belongs to, read from a history's previousEventId chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gpu_recovery.engine.history_path import state_visits

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def history(*events: tuple[str, int, dict[str, Any]]) -> list[dict[str, Any]]:
    """(type, previousEventId, details) per event; ids count from 1, one simulated second apart."""
    return [
        {"id": i, "previousEventId": previous, "type": kind, "timestamp": EPOCH + timedelta(seconds=i), **details}
        for i, (kind, previous, details) in enumerate(events, start=1)
    ]


def entered(name: str) -> dict[str, Any]:
    return {"stateEnteredEventDetails": {"name": name}}


def exited(name: str) -> dict[str, Any]:
    return {"stateExitedEventDetails": {"name": name}}


def iteration(index: int) -> dict[str, Any]:
    return {"mapIterationStartedEventDetails": {"index": index}}


def test_the_state_after_a_map_is_outside_it_even_when_the_map_end_points_into_an_iteration() -> None:
    events = history(
        ("ExecutionStarted", 0, {}),
        ("MapStateEntered", 1, entered("Nodes")),  # 2
        ("MapStateStarted", 2, {}),  # 3
        ("MapIterationStarted", 3, iteration(0)),  # 4
        ("MapIterationStarted", 3, iteration(1)),  # 5
        ("PassStateEntered", 4, entered("Check")),  # 6
        ("PassStateEntered", 5, entered("Check")),  # 7
        ("PassStateExited", 6, exited("Check")),  # 8
        ("MapIterationSucceeded", 8, {}),  # 9
        ("PassStateExited", 7, exited("Check")),  # 10
        ("MapIterationSucceeded", 10, {}),  # 11
        # moto points the Map's end at the last iteration event it saw: here a state inside iteration 1.
        ("MapStateSucceeded", 10, {}),  # 12
        ("MapStateExited", 12, exited("Nodes")),  # 13
        ("PassStateEntered", 13, entered("Done")),  # 14
        ("PassStateExited", 14, exited("Done")),  # 15
    )
    visits = state_visits(events, EPOCH)
    assert [(v.name, v.iteration) for v in visits] == [
        ("Nodes", None),
        ("Check", 0),
        ("Check", 1),
        ("Done", None),
    ]
    assert (visits[0].entered_at_sim, visits[0].exited_at_sim) == (2.0, 13.0)
