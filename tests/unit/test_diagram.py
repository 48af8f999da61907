"""The workflow diagram is generated from the definition, and the published one is current."""

from __future__ import annotations

import json
import re

from gpu_recovery import diagram
from gpu_recovery.resources import DEFINITION


def test_published_diagram_is_current() -> None:
    assert diagram.DIAGRAM_DOC.read_text() == diagram.document(), "run `make generated`"


def test_every_state_and_transition_is_drawn() -> None:
    definition = json.loads(DEFINITION.read_text())
    drawn = diagram.mermaid(definition)

    def walk(states: dict) -> None:  # type: ignore[type-arg]
        for name, state in states.items():
            assert re.search(rf"^\s+(subgraph )?{name}\W", drawn, re.MULTILINE), name
            targets = [state.get("Next"), state.get("Default"), *(c["Next"] for c in state.get("Choices", []))]
            targets += [c["Next"] for c in state.get("Catch", [])]
            for target in filter(None, targets):
                assert re.search(rf"^\s+{name} .*--?>?\.?-?> {target}$|^\s+{name} .*> {target}$", drawn, re.MULTILINE)
            if "ItemProcessor" in state:
                walk(state["ItemProcessor"]["States"])

    walk(definition["States"])


def test_choice_branches_are_labelled_with_their_condition() -> None:
    assert diagram.condition({"Variable": "$.decision", "StringEquals": "IGNORE"}) == "decision = IGNORE"
    assert diagram.condition({"Variable": "$.jobLock.Item.lockOwner.S", "IsPresent": True}) == "lockOwner present"
    assert (
        diagram.condition(
            {"Variable": "$.agentPolls.count", "NumericGreaterThanEqualsPath": "$.settings.agentPollMaxAttempts"}
        )
        == "count ≥ agentPollMaxAttempts"
    )
    assert (
        diagram.condition(
            {"And": [{"Variable": "$.dryRun", "BooleanEquals": False}, {"Not": {"Variable": "$.x", "IsPresent": True}}]}
        )
        == "dryRun = false and not x present"
    )
