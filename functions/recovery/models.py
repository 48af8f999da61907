"""Shapes that several steps share: the base of every payload model, the execution, the node, the failure, a node's
and a job's plan and result, a notification, and the words (enums) and errors of the workflow. Pydantic creates a
model class when its module is imported, even with defer_build, so the models only one step parses or returns
live with that step (recovery.requests: the node steps' payload; recovery.ecs_task: ClassifyFailure's input; the
rest in the handler's own module): a cold start creates only the classes its step uses (docs/benchmarks.md, cold
import; tests/unit/test_cold_start.py)."""

from __future__ import annotations

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


class Notification(CamelModel):
    subject: str
    message: str


class JobOutcomeKind(StrEnum):
    RESTARTED = "RESTARTED"
    FAILED = "FAILED"
    SERVICE_RESTARTS = "SERVICE_RESTARTS"


class JobTooLarge(Exception):
    """The job spans more nodes than MAX_JOB_NODES: its recovery could outgrow the execution's history."""


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
