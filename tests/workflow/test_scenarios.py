"""Every shipped scenario, end to end: the real ASL and step Lambdas on the local engine against the
simulated fleet. Each asserts the scenario's own expectations (node and job states, reboots, executions that
did work, notifications and, where given, the exact path of states)."""

from __future__ import annotations

import pytest

from gpu_recovery import scenario as scenarios
from gpu_recovery.simulate import run

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", scenarios.shipped())
def test_shipped_scenario_meets_its_expectations(name: str) -> None:
    loaded = scenarios.load(name)
    assert loaded.expect.path, "every shipped scenario pins its exact path of states"
    assert loaded.expect.node_paths, "every shipped scenario pins its exact path of states"
    report = run(loaded)
    assert report.passed, "\n".join(report.failures)
    # Only the injected events start executions: the rule's pattern filters out everything the recovery
    # itself makes ECS emit (DCGM checks, stopped siblings, reboots).
    assert len(report.executions) == sum(1 + e.duplicates for e in loaded.events)
    assert report.filtered_events > 0
    assert all(e.status == "SUCCEEDED" for e in report.executions)


def test_every_issue_scenario_is_shipped() -> None:
    assert {
        "gpu-healthy-app-bug",
        "transient-xid79",
        "persistent-fault",
        "budget-exhausted",
        "duplicate-events",
        "four-node-one-bad",
        "shared-bad-node",
        "dcgm-check-hangs",
        "instance-never-returns",
        "dry-run",
        "fleet-breaker",
        "reboot-800s",
        "restart-during-recheck",
    } <= set(scenarios.shipped())


def test_unknown_scenario_is_a_clear_error() -> None:
    with pytest.raises(scenarios.ScenarioError, match="no scenario file or shipped scenario named 'nope'"):
        scenarios.load("nope")
