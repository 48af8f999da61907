"""The path an execution took on the local engine: the history reader's visits (gpu_recovery/history.py) on the
simulated clock, in seconds since the simulation began."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gpu_recovery import history


@dataclass(frozen=True)
class StateVisit:
    """One entry into a state. ``iteration`` is the Map iteration index the state ran in (innermost Map), or
    ``None`` outside any Map. ``exited_at_sim`` is ``None`` when the history has no exit (Fail states, or an
    execution that is still running or was stopped inside the state)."""

    name: str
    entered_at_sim: float
    exited_at_sim: float | None
    iteration: int | None


def state_visit(visit: history.Visit, sim_epoch: datetime.datetime) -> StateVisit:
    exited = (visit.exited - sim_epoch).total_seconds() if visit.exited else None
    return StateVisit(visit.name, (visit.entered - sim_epoch).total_seconds(), exited, visit.iteration)


def state_visits(events: Sequence[dict[str, Any]], sim_epoch: datetime.datetime) -> list[StateVisit]:
    return [state_visit(visit, sim_epoch) for visit in history.read(events).visits]
