"""The payloads the state machine sends to the steps (see the Parameters blocks of the ASL)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from recovery.models import (
    Analysis,
    CamelModel,
    CheckPlan,
    ExecutionContext,
    Failure,
    JobPlan,
    NodeAction,
    NodeRef,
    NodeResult,
)


class NodeStepRequest(CamelModel):
    node: NodeRef
    job_id: str
    failure: Failure
    dry_run: bool
    execution: ExecutionContext
    lock_waits: int = 0
    check: dict[str, Any] = Field(default_factory=dict)
    check_plan: CheckPlan = Field(default_factory=CheckPlan)
    reboots_in_window: int = 0
    action: NodeAction | None = None  # RecordNodeState only
    analysis: Analysis | None = None


class JobRequest(CamelModel):
    job: JobPlan
    failure: Failure
    node_results: list[NodeResult]
    dry_run: bool
    execution: ExecutionContext
