"""Deterministic virtual time for the local engine and the simulated fleet: a discrete-event scheduler.

Every thread that takes part in a simulation is a *participant*: each thread moto starts for an execution, a Map
iteration or a state with a timeout (``thread_class()`` registers them), and the scenario runner while it injects
failures (``taking_part()``). Exactly one participant runs at a time. It runs until it blocks: on the clock
(``sleep``), on a ``SimEvent`` (with or without a timeout) or on another participant's end (``join``). Then the
participant that became ready first runs next. Only when no participant is ready does simulated time move, to the
earliest pending timer (one heap; ties broken by a sequence number). Every wake-up is booked by whoever causes it,
under one lock, so "everyone is blocked" is known exactly, never guessed from timing.

The same simulation therefore takes the same steps in the same order on every run, under any CPU load, and never
sleeps in real time. Threads outside the simulation (a test polling ``describe_execution``) run freely; a
``SimEvent`` they wait on counts real seconds, and their ``sleep`` simply moves an idle clock forward.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class _Participant:
    """A thread of the simulation. ``go`` is its baton: set by the scheduler when it is this thread's turn."""

    __slots__ = ("go", "timer", "woken")

    def __init__(self) -> None:
        self.go = threading.Event()
        self.timer: _Timer | None = None
        self.woken = False  # why its last wait ended: True = woken by an event, False = its timer fired


@dataclass(order=True)
class _Timer:
    at: float
    seq: int
    participant: _Participant = field(compare=False)
    on_fire: Callable[[], None] | None = field(default=None, compare=False)
    cancelled: bool = field(default=False, compare=False)


class SimClock:
    def __init__(self, start: datetime = EPOCH) -> None:
        self._start = start
        self._now = 0.0
        self._lock = threading.Lock()
        self._timers: list[_Timer] = []
        self._ready: deque[_Participant] = deque()
        self._running: _Participant | None = None
        self._seq = itertools.count()
        self._local = threading.local()
        self._thread_class: type[threading.Thread] | None = None
        self._idle = threading.Event()  # no participant runs or is ready, and no timer is pending
        self._idle.set()

    @property
    def start(self) -> datetime:
        """Simulated second zero: a timestamp on this clock minus it is simulated seconds."""
        return self._start

    def elapsed(self) -> float:
        """Simulated seconds since the clock started."""
        return self._now

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self._now)

    def advance_to(self, elapsed: float) -> None:
        """Move an idle clock forward (tests of the fleet alone, which has no participants)."""
        with self._lock:
            if any(not t.cancelled for t in self._timers):
                raise RuntimeError("the clock belongs to the scheduler while participants wait on it")
            self._now = max(self._now, elapsed)

    def wait_idle(self, timeout: float) -> bool:
        """Wait (real seconds, from outside the simulation) until nothing more can happen without outside help."""
        return self._idle.wait(timeout)

    def sleep(self, seconds: float) -> None:
        participant = self._current()
        if participant is None:
            self.advance_to(self._now + max(seconds, 0.0))
            return
        with self._lock:
            self._park(participant, seconds)

    # ------------------------------------------------------------------------------------------ participants

    @contextmanager
    def taking_part(self) -> Iterator[None]:
        """The calling thread takes part: it waits for its turn now, and gives it up on exit."""
        participant = _Participant()
        self._spawn(participant)
        self._enter(participant)
        try:
            yield
        finally:
            self._leave()

    def thread_class(self) -> type[threading.Thread]:
        """A ``threading.Thread`` whose threads are participants, with ``join``/``is_alive`` in simulated time."""
        if self._thread_class is None:
            self._thread_class = _make_thread_class(self)
        return self._thread_class

    def event(self) -> SimEvent:
        return SimEvent(self)

    def _current(self) -> _Participant | None:
        return getattr(self._local, "participant", None)

    def _spawn(self, participant: _Participant) -> None:
        """A new participant, ready after those already ready (called by the thread that starts it)."""
        with self._lock:
            self._ready.append(participant)
            self._dispatch()

    def _enter(self, participant: _Participant) -> None:
        """On the participant's own thread: wait for its first turn."""
        self._local.participant = participant
        participant.go.wait()
        participant.go.clear()

    def _leave(self) -> None:
        participant = self._current()
        self._local.participant = None
        with self._lock:
            if self._running is participant:
                self._running = None
            self._dispatch()

    # ------------------------------------------------------------------------------------------ scheduling
    # Everything below runs with self._lock held.

    def _dispatch(self) -> None:
        """Hand the baton to the next ready participant; when none is ready, advance time to the next timer."""
        if self._running is not None:
            return
        while not self._ready and self._timers:
            timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, timer.at)
            timer.participant.timer = None
            timer.participant.woken = False
            if timer.on_fire is not None:
                timer.on_fire()
            self._ready.append(timer.participant)
        if self._ready:
            self._idle.clear()
            self._running = self._ready.popleft()
            self._running.go.set()
        else:
            self._idle.set()

    def _wake(self, participant: _Participant) -> None:
        """Someone else ended ``participant``'s wait: its timer is void and it is ready."""
        if participant.timer is not None:
            participant.timer.cancelled = True
            participant.timer = None
        participant.woken = True
        self._ready.append(participant)

    def _park(
        self, participant: _Participant, timeout: float | None, on_timeout: Callable[[], None] | None = None
    ) -> bool:
        """Give up the turn until woken (True) or ``timeout`` simulated seconds have passed (False)."""
        if timeout is not None:
            participant.timer = _Timer(self._now + max(timeout, 0.0), next(self._seq), participant, on_timeout)
            heapq.heappush(self._timers, participant.timer)
        if self._running is participant:
            self._running = None
        self._dispatch()
        self._lock.release()
        try:
            participant.go.wait()
            participant.go.clear()
        finally:
            self._lock.acquire()
        return participant.woken


class SimEvent:
    """``threading.Event`` for participants: ``wait(timeout)`` counts simulated seconds and gives up the turn."""

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self._flag = False
        self._waiters: list[_Participant] = []
        self._real = threading.Event()  # for threads outside the simulation

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        clock = self._clock
        with clock._lock:
            self._flag = True
            self._real.set()
            for participant in self._waiters:
                clock._wake(participant)
            self._waiters.clear()
            clock._dispatch()

    def clear(self) -> None:
        with self._clock._lock:
            self._flag = False
            self._real.clear()

    def wait(self, timeout: float | None = None) -> bool:
        clock = self._clock
        participant = clock._current()
        if participant is None:
            return self._real.wait(timeout)
        with clock._lock:
            if self._flag:
                return True
            self._waiters.append(participant)
            return clock._park(participant, timeout, lambda: self._waiters.remove(participant))


def _make_thread_class(clock: SimClock) -> type[threading.Thread]:
    class SimThread(threading.Thread):
        """Registered with ``clock`` when started; its end wakes whoever joins it."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._sim_participant = _Participant()
            self._sim_done = SimEvent(clock)
            self._sim_started = False

        def start(self) -> None:
            clock._spawn(self._sim_participant)
            self._sim_started = True
            super().start()

        def run(self) -> None:
            clock._enter(self._sim_participant)
            try:
                super().run()
            finally:
                self._sim_done.set()
                clock._leave()

        def join(self, timeout: float | None = None) -> None:
            if not self._sim_started or clock._current() is None:
                super().join(timeout)
                return
            self._sim_done.wait(timeout)

        def is_alive(self) -> bool:
            return super().is_alive() and not self._sim_done.is_set()

    return SimThread


def threading_for(clock: SimClock) -> SimpleNamespace:
    """A stand-in for the ``threading`` module whose ``Thread`` and ``Event`` are the clock's."""
    return SimpleNamespace(Thread=clock.thread_class(), Event=clock.event, Lock=threading.Lock, RLock=threading.RLock)
