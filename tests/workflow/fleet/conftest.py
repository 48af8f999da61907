"""A fleet under mock_aws for each test, and small helpers that talk to it through boto3 like the workflow does."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from fleet_helpers import CLUSTER, REGION
from moto import mock_aws

from gpu_recovery.clock import SimClock
from gpu_recovery.sim import JobSpec, NodeSpec, SimFleet, Timings


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


@pytest.fixture
def make_fleet(clock: SimClock) -> Iterator[Callable[..., SimFleet]]:
    """Build a fleet; nodes and jobs default to one healthy 8-GPU node running one job."""
    with mock_aws():
        fleets: list[SimFleet] = []

        def make(nodes: list[NodeSpec] | None = None, jobs: list[JobSpec] | None = None, **kw: Any) -> SimFleet:
            nodes = nodes or [NodeSpec("n1")]
            jobs = [JobSpec("job-a", [nodes[0].name])] if jobs is None else jobs
            fleet = SimFleet(clock, CLUSTER, nodes, jobs, kw.pop("timings", Timings()), **kw)
            fleets.append(fleet.__enter__())
            return fleet

        yield make
        for fleet in reversed(fleets):
            fleet.__exit__(None, None, None)


@pytest.fixture
def ecs() -> Any:
    return boto3.client("ecs", region_name=REGION)
