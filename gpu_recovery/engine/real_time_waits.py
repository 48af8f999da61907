"""Corrections: moto's Step Functions interpreter runs on free threads and waits in real time; ours takes turns on
the ``SimClock``'s scheduler and waits in simulated time.

Each function below corrects one moto 5.2.5 behaviour, named after it, and has its own test in
``tests/workflow/engine/test_real_time_waits.py``. With them, a ``Wait`` of 300 s advances the simulated clock by
exactly 300 s and takes no real time; the recovery's timings are reported in simulated seconds, and the same
executions take the same steps in the same order on every run.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from types import SimpleNamespace
from typing import Final
from unittest import mock

from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.program import program
from moto.stepfunctions.parser.asl.component.state.exec import execute_state
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import inline_iteration_component, job
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branch_worker, branches_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval import environment
from moto.stepfunctions.parser.asl.eval.callback import callback
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager
from moto.stepfunctions.parser.backend import execution_worker

from gpu_recovery.clock import SimClock, SimEvent, threading_for

# Simulated seconds between two `.sync` polls. AWS polls ECS on its own schedule (seconds to a minute); 5 s keeps
# the simulated duration of a check within one poll of the task's real stop.
SYNC_POLL_SIM_SECONDS: Final = 5.0


@contextmanager
def correct_wait_state_real_time(clock: SimClock) -> Iterator[None]:
    """moto: ``Seconds``/``SecondsPath`` waits block on ``Event.wait(seconds)`` in real time
    (``WaitFunction._wait_interval``), and ``Timestamp``/``TimestampPath`` count from the wall clock
    (``Timestamp._get_wait_seconds`` uses ``datetime.now()``). Here both count on the simulated clock; as in moto,
    the wait ends early when the execution stops (its ``program_state_event`` fires and it is no longer running)."""

    def _wait_interval(self: WaitFunction, env: Environment, wait_seconds: float) -> None:
        event = env.program_state_event
        if not isinstance(event, SimEvent):  # moto's threads left unscheduled (a test of that correction)
            clock.sleep(wait_seconds)
            return
        until = clock.elapsed() + wait_seconds
        while env.is_running() and clock.elapsed() < until:
            event.wait(until - clock.elapsed())

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
    seconds, which says nothing about simulated time. Here each poll waits ``SYNC_POLL_SIM_SECONDS`` on the clock."""

    def _sleep_one_poll(_real_seconds: float) -> None:
        clock.sleep(SYNC_POLL_SIM_SECONDS)

    with mock.patch.object(state_task_service_callback, "time", SimpleNamespace(sleep=_sleep_one_poll)):
        yield


# Every moto module that starts a thread or waits on one, by the names it imported from ``threading``.
_THREADING_MODULES: Final = (
    program,
    inline_iteration_component,
    job,
    environment,
    branch_worker,
    branches_decl,
    execute_state,
)
_THREAD_MODULES: Final = (execution_worker, execute_state)


@contextmanager
def correct_threads_real_time(clock: SimClock) -> Iterator[None]:
    """moto: each execution, Map iteration, Parallel branch and state with a timeout (every Task state has one)
    runs on a plain thread; parents wait for children with ``Event.wait``/``Thread.join``, and timeouts
    (``TimeoutSeconds`` of a state or of the execution) are real seconds. Here those threads are participants of
    the clock's scheduler (``SimClock.thread_class``) and those events are ``SimEvent``s: one thread runs at a
    time, in an order the simulation alone decides, waits give up the turn, and every timeout is simulated."""
    sim_threading = threading_for(clock)
    with ExitStack() as stack:
        for module in _THREADING_MODULES:
            stack.enter_context(mock.patch.object(module, "threading", sim_threading))
        for module in _THREAD_MODULES:
            stack.enter_context(mock.patch.object(module, "Thread", sim_threading.Thread))
        yield


@contextmanager
def correct_callback_wait_real_time(clock: SimClock) -> Iterator[None]:
    """moto: a ``.waitForTaskToken`` task waits for SendTaskSuccess/Failure on a ``threading.Event`` that
    ``callback`` imported by name (``CallbackEndpoint``, ``HeartbeatEndpoint``), so its TimeoutSeconds are real
    seconds and the waiting thread never gives up its turn. Here they are ``SimEvent``s: the wait gives up the turn,
    a SendTaskSuccess from another participant wakes it, and the timeout is simulated."""
    with mock.patch.object(callback, "Event", clock.event):
        yield


@contextmanager
def correct_history_wall_clock(clock: SimClock) -> Iterator[None]:
    """moto: ``EventManager._get_current_timestamp`` stamps history events with ``datetime.now()``. Here they carry
    the simulated time, so state durations read from ``get_execution_history`` are simulated seconds."""
    with mock.patch.object(EventManager, "_get_current_timestamp", staticmethod(clock.now)):
        yield
