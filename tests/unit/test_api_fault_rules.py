"""Scenario ``api_faults`` rules: validated with one clear line per mistake, and deterministic."""

from __future__ import annotations

import re

import pytest
import yaml

from gpu_recovery import scenario as scenarios
from gpu_recovery.api_faults import ApiFault
from gpu_recovery.resources import SCENARIO_DIR

# A shipped scenario (nodes node-1..node-4) that a rule is added to.
BASE = yaml.safe_load((SCENARIO_DIR / "four-node-one-bad.yaml").read_text())


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"api": "ecs:Nope", "error": "throttling", "count": 1},
            "api_faults.0.api: ecs has no operation 'Nope'",
        ),
        ({"api": "nope:RunTask", "error": "throttling", "count": 1}, "unknown service 'nope'"),
        ({"api": "ecs:RunTask", "error": "slow", "count": 1}, "api_faults.0.error:"),
        ({"api": "ecs:RunTask", "error": "throttling"}, "give either count or rate"),
        ({"api": "ecs:RunTask", "error": "throttling", "count": 1, "rate": 0.5}, "give either count or rate"),
        ({"api": "ecs:RunTask", "error": "throttling", "rate": 1.5}, "api_faults.0.rate:"),
        ({"api": "ecs:RunTask", "error": "crash", "count": 1}, "a step rule injects error: crash"),
        ({"step": "AnalyzeDiag", "error": "throttling", "count": 1}, "a step rule injects error: crash"),
        ({"step": "DrainNode", "error": "crash", "count": 1}, "'DrainNode' is not a step Lambda state"),
        ({"error": "crash", "count": 1}, "give either api or step"),
        (
            {"api": "ecs:RunTask", "error": "throttling", "count": 1, "node": "node-9"},
            "api_faults.0.node: no node named 'node-9'",
        ),
        ({"api": "ecs:RunTask", "error": "throttling", "count": 1, "when": 3}, "api_faults.0.when: unknown key"),
    ],
)
def test_a_bad_rule_is_one_clear_line(rule: dict[str, object], message: str) -> None:
    with pytest.raises(scenarios.ScenarioError, match=re.escape(message)) as error:
        scenarios.parse(BASE | {"api_faults": [rule]}, "x.yaml")
    assert len(str(error.value).splitlines()) == 1
    assert str(error.value).startswith("x.yaml: api_faults.0")


def test_a_bad_rule_names_the_scenario_file() -> None:
    with pytest.raises(scenarios.ScenarioError, match=r"^x.yaml: api_faults\.0"):
        scenarios.parse(BASE | {"api_faults": [{"api": "ecs:RunTask"}]}, "x.yaml")


def test_count_fails_the_first_calls_and_rate_a_deterministic_share() -> None:
    first_two = ApiFault(api="ecs:RunTask", error="throttling", count=2)
    assert [first_two.fails(k) for k in range(1, 5)] == [True, True, False, False]
    half = ApiFault(api="ecs:RunTask", error="server_error", rate=0.5)
    assert [half.fails(k) for k in range(1, 7)] == [False, True, False, True, False, True]
    always = ApiFault(api="ecs:RunTask", error="access_denied", rate=1)
    assert all(always.fails(k) for k in range(1, 10))


def test_shipped_scenarios_parse_their_rules() -> None:
    assert [r.error for r in scenarios.load("reboot-denied-one-node").api_faults] == ["access_denied"]
