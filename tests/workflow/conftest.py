"""Fixtures shared by the end-to-end workflow tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gpu_recovery import scenario as scenarios
from gpu_recovery.local_stack import LocalStack
from gpu_recovery.sim import SimFleet
from gpu_recovery.simulate import deployed


@pytest.fixture
def stack_and_fleet() -> Iterator[tuple[LocalStack, SimFleet]]:
    """The stack deployed on the local engine with transient-xid79's fleet (one node, one job)."""
    with deployed(scenarios.load("transient-xid79")) as (stack, fleet, _clock):
        yield stack, fleet
