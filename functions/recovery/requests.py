"""The payloads the state machine sends to the steps (see the Parameters blocks of the ASL)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from recovery.models import (
    Analysis,
    CamelModel,
    CheckPlan,
    ExecutionContext,
    Failure,
    JobOutcome,
    JobPlan,
    NodeAction,
    NodeRef,
    NodeResult,
)


class StepError(BaseModel):
    """A Catch's error output, as Step Functions writes it (https://states-language.net/#error-output)."""

    model_config = ConfigDict(defer_build=True)  # built with the request that carries it (models.CamelModel)

    error: str = Field(alias="Error")
    cause: str = Field("", alias="Cause")


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
    error: StepError | None = None  # REBOOT_NOT_PERFORMED: why RebootInstance failed


class JobRequest(CamelModel):
    job: JobPlan
    failure: Failure
    node_results: list[NodeResult]
    dry_run: bool
    execution: ExecutionContext
    outcome: JobOutcome | None = None  # RestartLateJoiners: the job's outcome so far
