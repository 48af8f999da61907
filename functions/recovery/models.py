"""Shapes that cross a boundary: the execution input, what each step returns to the state machine,
and the ECS task as both EventBridge and DescribeTasks spell it (the same camelCase fields)."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    # defer_build: a model's validator is built when it is first used, so a handler's cold start builds only
    # the models that handler uses (pydantic docs, ConfigDict.defer_build).
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, defer_build=True)

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ExecutionContext(CamelModel):
    id: str
    name: str
    start_time: str = ""


# ---- ECS ---------------------------------------------------------------------------------------------
class EcsContainer(CamelModel):
    name: str = ""
    exit_code: int | None = None
    gpu_ids: list[str] = Field(default_factory=list)
    reason: str | None = None
    last_status: str | None = None


class EcsTask(CamelModel):
    """An ECS task as in the `ECS Task State Change` event detail and in DescribeTasks."""

    task_arn: str
    cluster_arn: str
    last_status: str
    task_definition_arn: str
    container_instance_arn: str | None = None
    group: str | None = None
    started_by: str | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    overrides: dict[str, Any] = Field(default_factory=dict)
    containers: list[EcsContainer] = Field(default_factory=list)
    tags: list[dict[str, str]] = Field(default_factory=list)
    version: int = 0
    # How it was launched (recovery.relaunch): DescribeTasks and the event spell these the same.
    capacity_provider_name: str | None = None
    launch_type: str | None = None
    attachments: list[dict[str, Any]] = Field(default_factory=list)
    enable_execute_command: bool = False

    @property
    def gpu_ids(self) -> list[str]:
        return [gpu for container in self.containers for gpu in container.gpu_ids]

    @property
    def task_id(self) -> str:
        return self.task_arn.rsplit("/", 1)[-1]


class TaskStateChangeEvent(BaseModel):
    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    source: Literal["aws.ecs"]
    detail_type: Literal["ECS Task State Change"] = Field(alias="detail-type")
    detail: EcsTask


class ContainerInstanceStateChange(CamelModel):
    """The detail of an "ECS Container Instance State Change" event (the fields of DescribeContainerInstances'
    ContainerInstance that readiness reads; ECS developer guide, "Amazon ECS container instance state change
    events")."""

    cluster_arn: str
    container_instance_arn: str
    ec2_instance_id: str
    agent_connected: bool
    updated_at: datetime


class ManualRequest(CamelModel):
    """Started by hand (console or `gpu-recovery start`) for one task."""

    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=True)

    task_arn: str
    reason: str = "manual request"
    dry_run: bool = False


# ---- What the steps return ---------------------------------------------------------------------------
class Decision(StrEnum):
    RECOVER = "RECOVER"
    IGNORE = "IGNORE"
    DUPLICATE = "DUPLICATE"


class NodeRef(CamelModel):
    ec2_instance_id: str
    container_instance_arn: str
    instance_type: str | None = None  # picks the reboot timeout (REBOOT_TIMEOUT_SECONDS_BY_FAMILY)


class Failure(CamelModel):
    """The task failure that started this recovery."""

    task_arn: str
    cluster_arn: str
    source: Literal["event", "manual"]
    reason: str
    container_instance_arn: str | None = None
    ec2_instance_id: str | None = None
    gpu_ids: list[str] = Field(default_factory=list)
    exit_code: int | None = None
    stop_code: str | None = None
    stopped_reason: str | None = None
    started_at: str | None = None  # the failed task's start: XIDs before it are not this failure's (diagnosis)
    stopped_at: str | None = None
    version: int = 0


class JobPlan(CamelModel):
    job_id: str
    tasks: list[str]  # task ids, as surviving_tasks
    surviving_tasks: list[str]  # task ids
    nodes: list[NodeRef]
    managed_by_service: bool = False


class Classification(CamelModel):
    decision: Decision
    reason: str
    dry_run: bool
    settings: dict[str, Any]
    failure: Failure | None = None
    job: JobPlan | None = None


class VerdictStatus(StrEnum):
    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"
    INCONCLUSIVE = "INCONCLUSIVE"


class RepairAction(StrEnum):
    NONE = "NONE"
    RESTART_APP = "RESTART_APP"
    RESET_GPU = "RESET_GPU"
    REBOOT = "REBOOT"
    REPLACE = "REPLACE"


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


class NodeStep(StrEnum):
    RELEASE = "RELEASE"
    RELEASE_REPAIRED = "RELEASE_REPAIRED"
    RECHECK = "RECHECK"
    REBOOT = "REBOOT"
    QUARANTINE = "QUARANTINE"
    SUSPECT = "SUSPECT"
    DRY_RUN = "DRY_RUN"
    RESET_GPU = "RESET_GPU"
    HOLD = "HOLD"  # fleet breaker open: out of service for a human, never repaired or terminated
    LOST = "LOST"  # this execution no longer owns the node: touch nothing more


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


class NodeOutcome(StrEnum):
    HEALTHY = "HEALTHY"
    REPAIRED = "REPAIRED"
    QUARANTINED = "QUARANTINED"
    HELD = "HELD"  # the fleet breaker took it out of service for a human; never repaired or terminated
    SUSPECT = "SUSPECT"
    DRY_RUN = "DRY_RUN"
    BUSY = "BUSY"
    LOST = "LOST"  # an operator or a takeover took the node from this execution mid-repair
    UNCHECKED = "UNCHECKED"  # dry run: the check could not run or be read, nothing was concluded or recorded


class Unfinished(CamelModel):
    """A node step that failed after the node's outcome was decided: what a human must still do, and why."""

    todo: str
    error: str


class NodeResult(CamelModel):
    node_id: str
    outcome: NodeOutcome
    reason: str
    container_instance_arn: str | None = None
    # No verdict: its per-GPU findings, once per node, would pass the 256 KB a state may hold for a 128-node job;
    # AnalyzeDiag records it on the node (lastVerdict) and in its history.
    actions: list[str] = Field(default_factory=list)
    handled_by: str | None = None
    unfinished: Unfinished | None = None


# ---- What the tables hold (docs/data-model.md) ---------------------------------------------------------
class NodeStatus(StrEnum):
    """`status` of a node's STATE row in the node table."""

    CHECKING = "CHECKING"  # locked by an execution, check running
    REBOOTING = "REBOOTING"  # reboot counted
    RESETTING_GPU = "RESETTING_GPU"  # GPU reset recorded
    HEALTHY = "HEALTHY"  # released
    QUARANTINED = "QUARANTINED"  # drained until a human acts
    HELD = "HELD"  # the fleet breaker was open: drained, never repaired or terminated, until a human acts
    SUSPECT = "SUSPECT"  # inconclusive twice, or released mid-recovery by HandleError / CleanupExecution
    UNHEALTHY = "UNHEALTHY"  # dry run: would have been repaired
    UNCHECKED = "UNCHECKED"  # dry run whose check could not run


class NodeAction(StrEnum):
    """The `action` a RecordNodeState step of the state machine passes (record_node_state.record)."""

    REBOOTING = "REBOOTING"
    REBOOT_NOT_PERFORMED = "REBOOT_NOT_PERFORMED"  # RebootInstance failed: give the counted reboot back
    RESETTING_GPU = "RESETTING_GPU"
    RELEASE = "RELEASE"
    QUARANTINE = "QUARANTINE"
    HOLD = "HOLD"
    SUSPECT = "SUSPECT"
    DRY_RUN = "DRY_RUN"


class JobStatus(StrEnum):
    """`status` of a job row (the state machine's LockJob writes RECOVERING)."""

    RUNNING = "RUNNING"
    RECOVERING = "RECOVERING"
    FAILED = "FAILED"
    ERROR = "ERROR"


class TaskRecoveryStatus(StrEnum):
    """`recoveryStatus` of a task row (the state machine's JoinExistingRecovery writes JOINED)."""

    RECOVERING = "RECOVERING"
    RESTARTED = "RESTARTED"
    ERROR = "ERROR"
    JOINED = "JOINED"


class LockOutcome(StrEnum):
    ACQUIRED = "ACQUIRED"
    WAIT = "WAIT"
    DONE = "DONE"


class NodeLock(CamelModel):
    outcome: LockOutcome
    lock_waits: int
    reboots_in_window: int
    result: NodeResult | None = None


class Notification(CamelModel):
    subject: str
    message: str


class JobOutcomeKind(StrEnum):
    RESTARTED = "RESTARTED"
    FAILED = "FAILED"
    SERVICE_RESTARTS = "SERVICE_RESTARTS"


class JobOutcome(CamelModel):
    outcome: JobOutcomeKind
    reason: str
    dry_run: bool
    restarted: int = 0  # tasks started again; which ones: the task table's restartedAs
    notification: Notification
    # The job row's join counter when its tasks were read: ReleaseJob releases only if it is unchanged.
    joins_seen: int = 0
    late_join_rounds: int = 0  # RestartLateJoiners rounds so far (the definition bounds them)


class ErrorReport(CamelModel):
    released_job: bool
    released_nodes: list[str]
    notification: Notification


class JobTooLarge(Exception):
    """The job spans more nodes than MAX_JOB_NODES: its recovery could outgrow the execution's history."""


class ExecutionStatusChange(CamelModel):
    """The detail of EventBridge's "Step Functions Execution Status Change" event."""

    execution_arn: str
    state_machine_arn: str
    name: str
    status: Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"]
    input: str | None = None  # the execution input as a JSON string: the ECS event or the manual request
    error: str | None = None
    cause: str | None = None

    @property
    def failed_task_arn(self) -> str | None:
        """The task whose failure started the execution, from either input form."""
        try:
            return request_task_arn(json.loads(self.input or "null"))
        except ValueError:
            return None


def request_task_arn(request: Any) -> str | None:
    """The task an execution input (an ECS event or a manual request) names, read as loosely as an input that
    may have broken ClassifyFailure allows; None when it names none."""
    if not isinstance(request, dict):
        return None
    arn = (request.get("detail") or {}).get("taskArn") if "detail" in request else request.get("taskArn")
    return arn if isinstance(arn, str) else None


class InvalidInput(Exception):
    """The execution input cannot be read; the state machine fails with this name and message."""


class Throttled(Exception):
    """An AWS call still throttled after the SDK's own retries. The state machine sees the class name as the
    step's error (Lambda's errorType) and retries the step later with backoff."""
