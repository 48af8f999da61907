"""What the state machine sends the node steps (AcquireNode, AnalyzeDiag, RecordNodeState: see the Parameters
blocks of the ASL) and what they return about a node's check: its plan, the verdict, the analysis. RestartJob's
payload is its own (restart_job.JobRequest)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from recovery.models import (
    CamelModel,
    ExecutionContext,
    Failure,
    NodeAction,
    NodeRef,
    NodeStep,
    RepairAction,
    VerdictStatus,
)


class GpuFinding(CamelModel):
    """What the check says about one GPU: what failed, the XIDs, DCGM's messages and why this action."""

    index: int | None = None
    entity: str | None = None  # a DCGM entity that is not a GPU ("CPU 0" on Grace); None for a GPU
    uuid: str | None = None
    pci_bus_id: str | None = None
    used_by_failed_task: bool | None = None  # None: the failed task did not run on this node, or no GPU map
    action: str = "IGNORE"  # xid_catalog.GpuAction
    failed_tests: list[str] = Field(default_factory=list)
    dcgm: list[dict[str, Any]] = Field(default_factory=list)
    xids: list[dict[str, Any]] = Field(default_factory=list)
    why: list[str] = Field(default_factory=list)


class Verdict(CamelModel):
    status: VerdictStatus
    action: RepairAction
    reasons: list[str]
    exit_code: int | None = None
    check_task_arn: str | None = None
    findings: list[dict[str, Any]] = Field(default_factory=list)
    gpus: list[GpuFinding] = Field(default_factory=list)
    dcgm_version: str | None = None


class Analysis(CamelModel):
    verdict: Verdict
    next: NodeStep
    reason: str
    # RESET_GPU: the GPU indexes to reset, comma-separated: the only parameter of the stack's GPU reset document.
    reset_gpus: str | None = None


class CheckPlan(CamelModel):
    phase: Literal["INITIAL", "AFTER_RESET", "AFTER_REBOOT"] = "INITIAL"
    inconclusive_checks: int = 0
    reset_status: str | None = None  # AFTER_RESET: the SSM command's final status when the reset did not succeed


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
