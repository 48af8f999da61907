"""The one reader of Step Functions execution histories: GetExecutionHistory's events, read into the states an
execution visited (with the Map iteration or Parallel branch each ran in) and the errors it raised. `show`,
`start --wait`, `simulate`, the local engine's `path()` and the benchmarks all read histories here.

Which Map or Parallel state holds a state comes from the definition (asl.enclosing); which iteration of a Map a
state ran in comes from the history, where each iteration's events chain through ``previousEventId`` back to
its ``MapIterationStarted`` (whose details carry the iteration ``index``: MapIterationEventDetails in the Step
Functions API reference). A Parallel branch has no events of its own: its index is the definition's."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from gpu_recovery.asl import Container, definition, enclosing, walk_states

# (Map or Parallel state, iteration or branch index), outermost first; () outside any.
Scope = tuple[tuple[str, int], ...]

_ITERATION_ENDS: Final = frozenset({"MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted"})
_MAP_ENDS: Final = frozenset({"MapStateSucceeded", "MapStateFailed", "MapStateAborted"})
_EXECUTION_ENDS: Final = frozenset({"ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted"})
# The events that end a (possibly retried) unit of work in a state successfully.
_WORK_SUCCEEDED: Final = frozenset({"TaskSucceeded", "LambdaFunctionSucceeded", "ActivitySucceeded"})


# ---- reading the events from Step Functions --------------------------------------------------------
def _pages(sfn: Any, execution_arn: str, page_size: int, **kwargs: Any) -> Any:
    # GetExecutionHistory returns at most 1000 events a page (maxResults; Step Functions API reference).
    paginator = sfn.get_paginator("get_execution_history")
    return paginator.paginate(executionArn=execution_arn, PaginationConfig={"PageSize": page_size}, **kwargs)


def _in_order(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda e: int(e["id"]))


def fetch(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of the execution, oldest first."""
    return _in_order(e for page in _pages(sfn, execution_arn, 1000) for e in page["events"])


def new_events(sfn: Any, execution_arn: str, after: int) -> list[dict[str, Any]]:
    """Events with an id above ``after``, oldest first, reading newest-first pages only until known ones."""
    events: list[dict[str, Any]] = []
    for page in _pages(sfn, execution_arn, 200, reverseOrder=True):
        fresh = [e for e in page["events"] if int(e["id"]) > after]
        events.extend(fresh)
        if len(fresh) < len(page["events"]):
            break
    return _in_order(events)


# ---- what the events say ----------------------------------------------------------------------------
def parse_json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def details(event: dict[str, Any]) -> dict[str, Any]:
    return next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})


@dataclass
class Visit:
    """One entry into a state. ``exited`` is None when the history has no exit (a Fail state, or an execution
    still running or stopped inside the state); ``error``/``cause`` are the last error raised in the state that
    no later retry made good (caught ones included: ``History.failures`` says which)."""

    name: str
    kind: str  # Task, Choice, Map, Parallel, Pass, Wait, Succeed, Fail
    scope: Scope
    entered: datetime
    exited: datetime | None = None
    input: Any = None
    output: Any = None
    error: str | None = None
    cause: str | None = None

    @property
    def seconds(self) -> float | None:
        return (self.exited - self.entered).total_seconds() if self.exited else None

    @property
    def owner(self) -> str | None:
        """The Map or Parallel state the visit ran in (the innermost one), or None at the top level."""
        return self.scope[-1][0] if self.scope else None

    @property
    def iteration(self) -> int | None:
        """The iteration (or branch) index the visit ran in, of its innermost Map (or Parallel) state."""
        return self.scope[-1][1] if self.scope else None

    def target(self) -> str | None:
        """The node or task a visit worked on, read from its input."""
        data = self.input if isinstance(self.input, dict) else {}
        node = data.get("node")
        if isinstance(node, dict) and node.get("ec2InstanceId"):
            return str(node["ec2InstanceId"])
        if data.get("taskArn") and self.scope:
            return "task " + str(data["taskArn"]).rsplit("/", 1)[-1]
        return None


@dataclass
class Failure:
    """An error event: the state whose error it is (the one the events chain back to, an iteration's state for
    the execution failure it caused), and the scope the event happened in (the execution's end: none)."""

    state: str | None
    scope: Scope
    at: datetime
    error: str
    cause: str
    caught: bool


@dataclass
class History:
    """An execution's history, read: the states visited in order and every error raised."""

    visits: list[Visit] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    started: datetime | None = None
    last_id: int = 0

    def labels(self) -> dict[Scope, str]:
        """A readable name per Map iteration: the node (or task) its first state worked on."""
        names: dict[Scope, str] = {}
        for visit in self.visits:
            if visit.scope and visit.scope not in names:
                target = visit.target()
                names[visit.scope] = target or f"{visit.scope[-1][0]} #{visit.scope[-1][1]}"
        return names


def map_items(visit: Visit, states: Mapping[str, Any] | None = None) -> list[Any] | None:
    """The items a Map state's visit iterated over (iteration i worked on item i): its input at the state's
    ItemsPath ("$" when absent; a reference path of field names, as the definition's Maps use)."""
    state = dict(walk_states(_or_shipped(states))).get(visit.name) or {}
    items: Any = visit.input
    for key in [k for k in str(state.get("ItemsPath", "$")).removeprefix("$").split(".") if k]:
        items = items.get(key) if isinstance(items, dict) else None
    return items if isinstance(items, list) else None


# ---- reading the events ---------------------------------------------------------------------------
def _or_shipped(states: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The given definition's States, or the shipped definition's."""
    return definition()["States"] if states is None else states


def _iteration_chains(events: Sequence[dict[str, Any]]) -> dict[int, Scope]:
    """Each event's stack of Map iterations (Map name as its MapIterationStarted gives it, index), outermost first.

    moto chains each Map iteration's events through ``previousEventId`` from its ``MapIterationStarted``. The end
    of the Map (``MapStateSucceeded``...) points back to whichever iteration event came last, not always to an
    iteration's end (with many iterations, often to a state inside one): it is placed in the scope its Map started
    in, so the states after a large Map are not taken for states of an iteration."""
    chains: dict[int, Scope] = {}
    map_started_in: list[Scope] = []  # scopes of the Maps still running, innermost last
    by_id = {int(event["id"]): event for event in events}
    for event_id in sorted(by_id):
        event = by_id[event_id]
        previous = by_id.get(int(event.get("previousEventId") or 0))
        chain: Scope = () if previous is None else chains[int(previous["id"])]
        if previous is not None and previous["type"] == "MapIterationStarted":
            info = details(previous)
            chain = (*chain, (str(info.get("name", "")), int(info.get("index", 0))))
        elif previous is not None and previous["type"] in _ITERATION_ENDS:
            chain = chain[:-1]
        if event["type"] == "MapStateStarted":
            map_started_in.append(chain)
        elif event["type"] in _MAP_ENDS and map_started_in:
            chain = _innermost_enclosing(map_started_in, chain)
        chains[event_id] = chain
    return chains


def _innermost_enclosing(map_started_in: list[Scope], chain: Scope) -> Scope:
    """The scope of the innermost running Map that ``chain`` lies inside (and forget that Map: it ended)."""
    for index in range(len(map_started_in) - 1, -1, -1):
        started = map_started_in[index]
        if chain[: len(started)] == started:
            del map_started_in[index]
            return started
    return chain


def _scope(containers: tuple[Container, ...] | None, chain: Scope) -> Scope:
    """A state's scope: its Map and Parallel states from the definition, each Map's iteration index from the
    history chain. The innermost chain entry of each Map counts: with many iterations moto chains an iteration's
    ``MapIterationStarted`` to an event of another iteration, so a chain can hold iterations that do not enclose
    the state (even after the Map ended). A state the definition does not have keeps the chain as it is."""
    if containers is None:
        return chain
    iterations = dict(chain)  # Map name -> index, the innermost entry last
    if any(branch is None and name not in iterations for name, branch in containers):
        return chain
    return tuple((name, iterations[name] if branch is None else branch) for name, branch in containers)


def read(events: Sequence[dict[str, Any]], states: Mapping[str, Any] | None = None) -> History:
    """Pair each *StateEntered with its *StateExited (same name, same scope) and collect the errors raised.
    ``states`` is the definition's top-level States (default: the shipped definition)."""
    inside = enclosing(_or_shipped(states))
    chains = _iteration_chains(events)
    result = History()
    in_visit: dict[int, Visit | None] = {}  # event id -> the visit it happened in
    open_visits: dict[tuple[str, Scope], list[Visit]] = {}
    for event in _in_order(events):
        event_id, kind, info, at = int(event["id"]), str(event["type"]), details(event), event["timestamp"]
        current = in_visit.get(int(event.get("previousEventId") or 0))
        if kind == "ExecutionStarted":
            result.started = at
        if kind.endswith(("StateEntered", "StateExited")):
            name = str(info.get("name"))
            scope = _scope(inside.get(name), chains[event_id])
            if kind.endswith("StateEntered"):
                current = Visit(name, kind.removesuffix("StateEntered"), scope, at, input=parse_json(info.get("input")))
                result.visits.append(current)
                open_visits.setdefault((name, scope), []).append(current)
            else:
                pending = open_visits.get((name, scope))
                if pending:
                    done = pending.pop()
                    done.exited, done.output = at, parse_json(info.get("output"))
                current = None
        elif "error" in info or kind in _EXECUTION_ENDS:
            error, cause = str(info.get("error", kind)), str(info.get("cause", ""))
            caught = not kind.startswith("Execution")
            # An execution's own end is outside every iteration, whatever state its error came from.
            scope = (current.scope if current else chains[event_id]) if caught else ()
            result.failures.append(Failure(current.name if current else None, scope, at, error, cause, caught))
            if current:
                current.error, current.cause = error, cause
        elif kind in _WORK_SUCCEEDED and current:
            current.error = current.cause = None
        in_visit[event_id] = current
        result.last_id = max(result.last_id, event_id)
    if result.started is None and result.visits:
        result.started = result.visits[0].entered
    return result
