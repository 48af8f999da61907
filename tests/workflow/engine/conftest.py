"""Fixtures for the local engine's tests: small ASL definitions run on moto with (or without) each correction."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from engine_harness import HANDLERS, StartEngine

from gpu_recovery.clock import SimClock
from gpu_recovery.engine import LocalEngine


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


@pytest.fixture
def start_engine(clock: SimClock) -> Iterator[StartEngine]:
    """Enter a LocalEngine (optionally ``without`` some corrections); it exits at teardown."""
    engines: list[LocalEngine] = []

    def _start(without: tuple[str, ...] = ()) -> LocalEngine:
        engine = LocalEngine(clock, handler_paths=[HANDLERS], without=without).__enter__()
        engines.append(engine)
        return engine

    yield _start
    for engine in reversed(engines):
        engine.__exit__(None, None, None)
