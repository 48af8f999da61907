"""The steps' only source of "now" and of waiting: the local simulator replaces both with simulated time, so that
what the steps record lines up with the simulated fleet's event times."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def sleep(seconds: float) -> None:
    time.sleep(seconds)
