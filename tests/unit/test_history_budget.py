"""The worst-case execution history bound (infra/history_budget.py) and the configuration that enforces it."""

from __future__ import annotations

import pytest

from infra.config import Config, ConfigError
from infra.history_budget import HISTORY_EVENT_LIMIT, events_per_node, worst_case_events


def test_each_loop_iteration_and_node_adds_events() -> None:
    base = events_per_node(1, 0)
    assert events_per_node(2, 0) - base == 9  # LockNode (5), DidWeLockTheNode, WaitForOtherRepair (2 each)
    assert events_per_node(1, 30) > base + 30 * 13
    assert worst_case_events(2, 1, 0) - worst_case_events(1, 1, 0) > base


def test_defaults_fit_with_and_without_gpu_reset() -> None:
    assert Config.load().worst_case_history_events() <= HISTORY_EVENT_LIMIT
    assert Config.load(context={"GPU_RESET_ENABLED": True}).worst_case_history_events() <= HISTORY_EVENT_LIMIT


def test_a_bound_whose_worst_case_cannot_fit_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"MAX_JOB_NODES=128 \(from context\).*at most 25000") as error:
        Config.load(context={"MAX_JOB_NODES": 128})
    assert "\n" not in str(error.value)


def test_a_128_node_job_fits_with_tight_lock_and_poll_bounds() -> None:
    config = Config.load(context={"MAX_JOB_NODES": 128, "NODE_LOCK_MAX_WAITS": 2})
    assert config.worst_case_history_events() <= HISTORY_EVENT_LIMIT
