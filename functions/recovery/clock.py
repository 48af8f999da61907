"""The steps' only source of "now": the local simulator replaces it with simulated time, so that what the
steps record lines up with the simulated fleet's event times."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
