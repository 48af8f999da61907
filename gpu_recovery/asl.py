"""The recovery definition as data: one walker over its states, nested ones (Map iterations, Parallel branches)
included, for the CLI, the simulator and the scenario checks."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from gpu_recovery.resources import DEFINITION


@cache
def definition() -> dict[str, Any]:
    """The shipped definition file (statemachine/recovery.asl.json), with its ${...} placeholders."""
    return dict(json.loads(DEFINITION.read_text()))


def walk_states(states: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(name, state) for every state, nested ones after their Map or Parallel state."""
    for name, state in states.items():
        yield name, state
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from walk_states(processor.get("States", {}))
        for branch in state.get("Branches", []):
            yield from walk_states(branch.get("States", {}))
