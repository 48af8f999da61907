"""The path an execution took, read from its history: states entered, in order, with simulated timings."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True)
class StateVisit:
    """One entry into a state. ``iteration`` is the Map iteration index the state ran in (innermost Map), or
    ``None`` outside any Map. ``exited_at_sim`` is ``None`` when the history has no exit (Fail states, or an
    execution that is still running or was stopped inside the state)."""

    name: str
    entered_at_sim: float
    exited_at_sim: float | None
    iteration: int | None


_ITERATION_ENDS: Final = frozenset({"MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted"})
_MAP_ENDS: Final = frozenset({"MapStateSucceeded", "MapStateFailed", "MapStateAborted"})


def _map_scopes(events: Sequence[dict[str, Any]]) -> dict[int, tuple[int, ...]]:
    """Each event's stack of Map iteration indices (outermost first).

    moto chains each Map iteration's events through ``previousEventId`` from its ``MapIterationStarted``. The end
    of the Map (``MapStateSucceeded``...) points back to whichever iteration event came last, not always to an
    iteration's end (with many iterations, often to a state inside one): it is placed in the scope its Map started
    in, so the states after a large Map are not taken for states of an iteration."""
    scopes: dict[int, tuple[int, ...]] = {}
    map_started_in: list[tuple[int, ...]] = []  # scopes of the Maps still running, innermost last
    by_id = {int(event["id"]): event for event in events}
    for event_id in sorted(by_id):
        event = by_id[event_id]
        previous = by_id.get(int(event.get("previousEventId") or 0))
        if previous is None:
            scope: tuple[int, ...] = ()
        else:
            scope = scopes[int(previous["id"])]
            if previous["type"] == "MapIterationStarted":
                scope = (*scope, int(previous["mapIterationStartedEventDetails"]["index"]))
            elif previous["type"] in _ITERATION_ENDS:
                scope = scope[:-1]
        if event["type"] == "MapStateStarted":
            map_started_in.append(scope)
        elif event["type"] in _MAP_ENDS and map_started_in:
            scope = _innermost_enclosing(map_started_in, scope)
        scopes[event_id] = scope
    return scopes


def _innermost_enclosing(map_started_in: list[tuple[int, ...]], scope: tuple[int, ...]) -> tuple[int, ...]:
    """The scope of the innermost running Map that ``scope`` lies inside (and forget that Map: it ended)."""
    for index in range(len(map_started_in) - 1, -1, -1):
        started = map_started_in[index]
        if scope[: len(started)] == started:
            del map_started_in[index]
            return started
    return scope


def _iteration(scope: tuple[int, ...]) -> int | None:
    return scope[-1] if scope else None


def state_visits(events: Sequence[dict[str, Any]], sim_epoch: datetime.datetime) -> list[StateVisit]:
    """Pair each ``*StateEntered`` event with its ``*StateExited`` (same state name, same Map iteration)."""
    scopes = _map_scopes(events)
    visits: list[dict[str, Any]] = []
    open_visits: dict[tuple[str, int | None], list[dict[str, Any]]] = {}

    def sim_seconds(event: dict[str, Any]) -> float:
        return (event["timestamp"] - sim_epoch).total_seconds()

    for event in sorted(events, key=lambda e: int(e["id"])):
        kind: str = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            iteration = _iteration(scopes[int(event["id"])])
            visit = {"name": name, "entered": sim_seconds(event), "exited": None, "iteration": iteration}
            visits.append(visit)
            open_visits.setdefault((name, iteration), []).append(visit)
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            iteration = _iteration(scopes[int(event["id"])])
            pending = open_visits.get((name, iteration))
            if pending:
                pending.pop()["exited"] = sim_seconds(event)
    return [StateVisit(v["name"], v["entered"], v["exited"], v["iteration"]) for v in visits]
