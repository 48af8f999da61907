"""The fleet breaker: at most a share of the cluster is rebooted or reset at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recovery.models import NodeStep
from recovery.policy import breaker_open_step, repair_slots
from recovery.settings import get_settings
from recovery.tables import Tables

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LEASE = timedelta(hours=1)


@pytest.mark.parametrize(
    ("cluster_size", "percent", "slots"),
    [(1, 25, 1), (4, 25, 1), (8, 25, 2), (10, 25, 2), (100, 25, 25), (3, 100, 3), (40, 1, 1)],
)
def test_repair_slots_are_a_share_of_the_cluster_never_zero(cluster_size: int, percent: int, slots: int) -> None:
    assert repair_slots(cluster_size, percent) == slots


def test_an_open_breaker_holds_the_node_and_names_who_is_in_repair() -> None:
    step, reason = breaker_open_step(["i-b", "i-a"], 2)
    assert step == NodeStep.HOLD
    assert "fleet breaker open: 2 of 2 repair slot(s) in use (i-a, i-b)" in reason


@pytest.fixture
def tables(aws: None) -> Tables:
    return Tables.from_settings(get_settings())


def test_slots_are_taken_up_to_the_limit_kept_by_their_holder_and_given_back(tables: Tables) -> None:
    take = tables.take_repair_slot
    assert take("gpu", "i-a", "exec-1", now=NOW, lease=LEASE, slots=2) == (True, [])
    assert take("gpu", "i-b", "exec-2", now=NOW, lease=LEASE, slots=2) == (True, ["i-a"])
    taken, others = take("gpu", "i-c", "exec-3", now=NOW, lease=LEASE, slots=2)
    assert not taken
    assert sorted(others) == ["i-a", "i-b"]
    # The holder keeps its slot (a reset escalating to a reboot needs no second slot).
    assert take("gpu", "i-a", "exec-1", now=NOW, lease=LEASE, slots=2)[0]
    # Only the execution that holds a slot gives it back.
    assert not tables.release_repair_slot("gpu", "i-a", "exec-9")
    assert tables.release_repair_slot("gpu", "i-a", "exec-1")
    assert take("gpu", "i-c", "exec-3", now=NOW, lease=LEASE, slots=2)[0]


def test_a_slot_whose_lease_ran_out_is_freed(tables: Tables) -> None:
    assert tables.take_repair_slot("gpu", "i-a", "crashed", now=NOW, lease=LEASE, slots=1)[0]
    assert not tables.take_repair_slot("gpu", "i-b", "exec-2", now=NOW + LEASE / 2, lease=LEASE, slots=1)[0]
    assert tables.take_repair_slot("gpu", "i-b", "exec-2", now=NOW + LEASE * 2, lease=LEASE, slots=1) == (True, [])
