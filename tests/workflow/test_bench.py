"""The benchmark harness measures what it says (no timing is asserted: timings live in bench/ results)."""

from __future__ import annotations

import pytest

from bench import reboot_floor
from bench.__main__ import LAMBDA_REQUEST_USD, STANDARD_TRANSITION_USD, measure

pytestmark = pytest.mark.slow


def test_measure_counts_the_work_and_prices_it() -> None:
    row = measure("gpu-healthy-app-bug")
    assert row["passed"]
    # One execution: classify, lock node, analyze, release node, restart job = 5 Lambda invocations.
    assert row["lambda_invocations"] == 5
    assert row["calls"]["ecs:runTask.sync"] == 1
    assert row["recovery_sim_seconds"] == 120  # one DCGM check of diag_seconds
    assert row["cost_usd"] == pytest.approx(
        row["transitions"] * STANDARD_TRANSITION_USD + row["lambda_invocations"] * LAMBDA_REQUEST_USD
    )


def test_reboot_floor_is_reached_with_constant_transitions(monkeypatch: pytest.MonkeyPatch) -> None:
    # Two reboot times either side of the old fixed wait (180 s) and its 30 s poll grid.
    monkeypatch.setattr(reboot_floor, "REBOOT_SECONDS", (60, 601))
    rows = reboot_floor.measure()
    assert all(r["passed"] for r in rows)
    assert [r["ratio"] for r in rows] == [1.0, 1.0]  # the simulated times are exact: diag + R + diag
    assert len({r["transitions"] for r in rows}) == 1
    assert rows[0]["transitions"] <= 27
