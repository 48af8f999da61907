"""The recovery definition as data: one walker over its states, nested ones (Map iterations, Parallel branches)
included, for the CLI, the simulator, the scenario checks and the history reader."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from gpu_recovery.resources import DEFINITION

# A state that holds others: its name, and the branch index for a Parallel state (None for a Map state).
Container = tuple[str, int | None]


@cache
def definition() -> dict[str, Any]:
    """The shipped definition file (statemachine/recovery.asl.json), with its ${...} placeholders."""
    return dict(json.loads(DEFINITION.read_text()))


def _nested(state: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], int | None]]:
    """The state lists a Map (its ItemProcessor, or the older Iterator) or Parallel (each branch) state holds."""
    processor = state.get("ItemProcessor") or state.get("Iterator")
    if processor:
        yield processor.get("States", {}), None
    for index, branch in enumerate(state.get("Branches", [])):
        yield branch.get("States", {}), index


def walk_states(states: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(name, state) for every state, nested ones after their Map or Parallel state."""
    for name, state in states.items():
        yield name, state
        for inner, _ in _nested(state):
            yield from walk_states(inner)


def enclosing(states: Mapping[str, Any]) -> dict[str, tuple[Container, ...]]:
    """Every state's enclosing Map and Parallel states, outermost first (empty at the top level). A name is
    enough: state names are unique in the whole state machine, nested ones included (Amazon States Language
    specification, "States": https://states-language.net/spec.html#states-fields)."""
    inside: dict[str, tuple[Container, ...]] = dict.fromkeys(states, ())
    for name, state in walk_states(states):
        for inner, branch in _nested(state):
            inside |= dict.fromkeys(inner, (*inside[name], (name, branch)))
    return inside
