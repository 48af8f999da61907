"""Simulated time shared by the local engine and the simulated fleet.

Each sleeping thread moves simulated time forward by exactly the time it slept, and really sleeps only
``seconds / speed``. Time never advances on its own, so a single recovery walks the same path every run
(a 300 s reboot is over after a 300 s Wait, however slow the machine is), while concurrent executions still
interleave in the order their waits would end.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class SimClock:
    def __init__(self, speed: float = 200.0, start: datetime = EPOCH) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.speed = speed
        self._start = start
        self._elapsed = 0.0
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        """Simulated seconds since the clock started."""
        with self._lock:
            return self._elapsed

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.elapsed())

    def sleep(self, seconds: float) -> None:
        wake_at = self.elapsed() + max(seconds, 0.0)
        time.sleep(max(seconds, 0.0) / self.speed)
        self.advance_to(wake_at)

    def advance_to(self, elapsed: float) -> None:
        with self._lock:
            self._elapsed = max(self._elapsed, elapsed)
