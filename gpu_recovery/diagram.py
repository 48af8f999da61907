"""The workflow diagram, generated from statemachine/recovery.asl.json as a Mermaid flowchart (GitHub renders
Mermaid in Markdown: https://docs.github.com/en/get-started/writing-on-github/working-with-advanced-formatting/creating-diagrams).
docs/workflow-diagram.md is this module's output (`make generated`); a test fails when it is stale."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from gpu_recovery.resources import DEFINITION

DIAGRAM_DOC = Path(__file__).resolve().parent.parent / "docs" / "workflow-diagram.md"
# Longest suffix first: NumericGreaterThanEquals is ≥, not =.
_COMPARISONS = {
    "GreaterThanEquals": "≥",
    "LessThanEquals": "≤",
    "GreaterThan": ">",
    "LessThan": "<",
    "Equals": "=",
    "Matches": "~",
}
_DYNAMODB_TYPES = frozenset({"S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"})
# Mermaid node shapes by state type: a rhombus where the workflow branches, a stadium for waits, a circle ends.
_SHAPES = {"Choice": "{{{}}}", "Wait": "([{}])", "Pass": "[/{}/]", "Succeed": "(({}))", "Fail": "(({}))"}


def _field(path: str) -> str:
    """The last name of a JSONPath, past DynamoDB's type keys (`$.jobLock.Item.lockOwner.S` is lockOwner)."""
    names = [n for n in path.removeprefix("$.").split(".") if n not in _DYNAMODB_TYPES]
    return names[-1]


def condition(rule: Mapping[str, Any]) -> str:
    """A Choice rule, short: `decision = IGNORE`, `lockOwner present`, `count ≥ agentPollMaxAttempts`."""
    if "And" in rule or "Or" in rule:
        joiner = " and " if "And" in rule else " or "
        return joiner.join(condition(r) for r in rule.get("And") or rule["Or"])
    if "Not" in rule:
        return f"not {condition(rule['Not'])}"
    field = _field(rule["Variable"])
    for key, value in rule.items():
        if key == "IsPresent":
            return f"{field} {'present' if value else 'absent'}"
        for suffix, symbol in _COMPARISONS.items():
            if key.endswith(suffix) or key.endswith(f"{suffix}Path"):
                shown = str(value).lower() if isinstance(value, bool) else value
                if key.endswith("Path"):
                    shown = _field(str(value))
                return f"{field} {symbol} {shown}"
    return field


def _edges(name: str, state: Mapping[str, Any]) -> Iterator[str]:
    if state["Type"] == "Choice":
        for rule in state["Choices"]:
            yield f'    {name} -- "{condition(rule)}" --> {rule["Next"]}'
        if "Default" in state:
            yield f'    {name} -- "otherwise" --> {state["Default"]}'
    elif "Next" in state:
        yield f"    {name} --> {state['Next']}"
    for catch in state.get("Catch", []):
        yield f'    {name} -. "{", ".join(catch["ErrorEquals"])}" .-> {catch["Next"]}'


def _states(states: Mapping[str, Any], indent: str = "    ") -> Iterator[str]:
    for name, state in states.items():
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield f'{indent}subgraph {name}["{name} (Map: one iteration per item)"]'
            yield f"{indent}    direction TB"
            yield from _states(processor["States"], indent + "    ")
            yield f"{indent}end"
        else:
            yield f"{indent}{name}{_SHAPES.get(state['Type'], '[{}]').format(name)}"


def _all_edges(states: Mapping[str, Any]) -> Iterator[str]:
    for name, state in states.items():
        yield from _edges(name, state)
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            yield from _all_edges(processor["States"])


def mermaid(definition: Mapping[str, Any]) -> str:
    lines = ["flowchart TD", f"    start((start)) --> {definition['StartAt']}"]
    lines += _states(definition["States"])
    lines += _all_edges(definition["States"])
    return "\n".join(lines)


def document() -> str:
    definition = json.loads(DEFINITION.read_text())
    return (
        "# Workflow diagram\n\n"
        "Generated from [`statemachine/recovery.asl.json`](../statemachine/recovery.asl.json) by "
        "`gpu_recovery/diagram.py` (`make generated`; a test fails when it is stale). Solid arrows are `Next` "
        "and Choice branches (labelled with their condition), dotted arrows are `Catch` (labelled with the "
        "errors), boxes inside a frame are the iterations of a Map state. Details of each state: "
        "[workflow.md](workflow.md).\n\n"
        f"```mermaid\n{mermaid(definition)}\n```\n"
    )
