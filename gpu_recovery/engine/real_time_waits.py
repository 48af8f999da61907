"""Corrections: moto's Step Functions interpreter waits in real time; ours waits on the ``SimClock``.

Each function below corrects one moto 5.2.5 behaviour, named after it, and has its own test in
``tests/workflow/engine/test_real_time_waits.py``. With them, a ``Wait`` of 300 s advances the simulated clock by
exactly 300 s and really sleeps ``300 / speed``; the recovery's timings are reported in simulated seconds.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, Final
from unittest import mock

from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

from gpu_recovery.clock import SimClock

# Simulated seconds between two `.sync` polls. AWS polls ECS on its own schedule (seconds to a minute); 5 s keeps
# the simulated duration of a check within one poll of the task's real stop, at 1/speed real seconds per poll.
SYNC_POLL_SIM_SECONDS: Final = 5.0

# How often (real seconds) a `.sync` state's deadline is compared with the simulated clock; far below one poll.
_DEADLINE_CHECK_REAL_SECONDS: Final = 0.002


@contextmanager
def correct_wait_state_real_time(clock: SimClock) -> Iterator[None]:
    """moto: ``Seconds``/``SecondsPath`` waits block on ``Event.wait(seconds)`` in real time
    (``WaitFunction._wait_interval``), and ``Timestamp``/``TimestampPath`` count from the wall clock
    (``Timestamp._get_wait_seconds`` uses ``datetime.now()``). Here both count on the simulated clock."""

    def _wait_interval(self: WaitFunction, env: Environment, wait_seconds: float) -> None:
        clock.sleep(wait_seconds)

    def _get_wait_seconds(self: Timestamp, env: Environment) -> float:
        self.string.eval(env=env)
        timestamp_str: str = env.stack.pop()
        timestamp = self._from_timestamp_string(timestamp=timestamp_str)
        if timestamp is None:  # moto's own validation error, unchanged
            return original_get_wait_seconds(self, env)
        # ASL timestamps end in "Z"; moto parses them naive, so they are UTC.
        return (timestamp.replace(tzinfo=datetime.UTC) - clock.now()).total_seconds()

    original_get_wait_seconds = Timestamp._get_wait_seconds
    with (
        mock.patch.object(WaitFunction, "_wait_interval", _wait_interval),
        mock.patch.object(Timestamp, "_get_wait_seconds", _get_wait_seconds),
    ):
        yield


@contextmanager
def correct_retry_interval_real_time(clock: SimClock) -> Iterator[None]:
    """moto: ``RetrierDecl._eval_body`` calls ``time.sleep(interval)`` (interval after BackoffRate, MaxDelaySeconds
    and jitter, all computed by moto). Here the interval is slept on the simulated clock."""
    with mock.patch.object(retrier_decl, "time", SimpleNamespace(sleep=clock.sleep)):
        yield


@contextmanager
def correct_sync_poll_real_time(clock: SimClock) -> Iterator[None]:
    """moto: ``StateTaskServiceCallback._eval_sync`` polls every ``_DELAY_SECONDS_SYNC_CONDITION_CHECK`` (0.5) real
    seconds, which says nothing about simulated time. Here each poll advances the simulated clock by
    ``SYNC_POLL_SIM_SECONDS`` (and really sleeps that / speed)."""

    def _sleep_one_poll(_real_seconds: float) -> None:
        clock.sleep(SYNC_POLL_SIM_SECONDS)

    with mock.patch.object(state_task_service_callback, "time", SimpleNamespace(sleep=_sleep_one_poll)):
        yield


class _SimDeadlineEvent(threading.Event):
    """An Event whose ``wait(timeout)`` counts ``timeout`` in simulated seconds."""

    def __init__(self, clock: SimClock) -> None:
        super().__init__()
        self._clock = clock

    def wait(self, timeout: float | None = None) -> bool:
        if timeout is None:
            return super().wait()
        deadline = self._clock.elapsed() + timeout
        while not super().wait(_DEADLINE_CHECK_REAL_SECONDS):
            if self._clock.elapsed() >= deadline:
                return self.is_set()
        return True


def _is_sync_task(state: Any) -> bool:
    return isinstance(state, StateTaskServiceCallback) and state.resource.condition in (
        ResourceCondition.Sync,
        ResourceCondition.Sync2,
    )


@contextmanager
def correct_sync_timeout_real_time(clock: SimClock) -> Iterator[None]:
    """moto: ``ExecutionState._evaluate_with_timeout`` runs the state on a thread and waits for it with
    ``threading.Event().wait(TimeoutSeconds)``: a hung ``.sync`` task would time out after TimeoutSeconds of real
    time. Here, for ``.sync`` task states, that wait counts simulated seconds (which the ``.sync`` poll advances),
    so a hung ECS task ends in ``States.Timeout`` after TimeoutSeconds simulated seconds.

    Other states keep moto's real-time deadline: a Lambda handler's run time is real, not simulated, and a
    concurrent execution's Wait must not time it out."""
    sync_state = threading.local()
    original = execute_state.ExecutionState._evaluate_with_timeout

    def _evaluate_with_timeout(self: execute_state.ExecutionState, env: Environment) -> None:
        # moto creates its termination Event on this thread, inside the call below.
        sync_state.active = _is_sync_task(self)
        try:
            original(self, env)
        finally:
            sync_state.active = False

    def _event() -> threading.Event:
        return _SimDeadlineEvent(clock) if getattr(sync_state, "active", False) else threading.Event()

    with (
        mock.patch.object(execute_state.ExecutionState, "_evaluate_with_timeout", _evaluate_with_timeout),
        mock.patch.object(execute_state, "threading", SimpleNamespace(Event=_event)),
    ):
        yield


@contextmanager
def correct_history_wall_clock(clock: SimClock) -> Iterator[None]:
    """moto: ``EventManager._get_current_timestamp`` stamps history events with ``datetime.now()``. Here they carry
    the simulated time, so state durations read from ``get_execution_history`` are simulated seconds."""
    with mock.patch.object(EventManager, "_get_current_timestamp", staticmethod(clock.now)):
        yield
