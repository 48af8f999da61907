"""Every decision of the workflow, as pure functions: no AWS, no clock, no environment."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from recovery.models import (
    Decision,
    JobOutcomeKind,
    LockOutcome,
    NodeOutcome,
    NodeResult,
    NodeStep,
    RepairAction,
    VerdictStatus,
)
from recovery.notify import NODES_LISTED, listing

if TYPE_CHECKING:  # models of single steps, for annotations only: importing them would create their classes
    from recovery.ecs_task import EcsTask
    from recovery.requests import CheckPlan, Verdict

# Stop codes ECS sets for stops that no GPU fault causes (the EventBridge rule filters them too; the
# classifier repeats the check because manual and replayed inputs bypass the rule; the Lambda asset cannot
# import infra/, so tests/infra/test_event_pattern.py pins the two lists equal). The codes are botocore's ECS
# TaskStopCode enum. TaskFailedToStart: the task never ran (image pull, placement, a missing secret), so no
# GPU work failed. The other two codes stay recoverable: EssentialContainerExited (the GPU job crashed) and
# InfrastructureHealth (ECS judged the host unhealthy, which a node check is there to confirm or clear; a
# check never reboots a healthy node).
NEVER_GPU_STOP_CODES = frozenset(
    {"UserInitiated", "ServiceSchedulerInitiated", "SpotInterruption", "TerminationNotice", "TaskFailedToStart"}
)
# Groups ECS gives every task whose launcher named none: RunTask/StartTask use "family:<task family>", a
# service uses "service:<service name>". Tasks sharing one of these are unrelated runs or interchangeable
# replicas, never one multi-task job. A service's startedBy is "ecs-svc/<deployment id>", shared the same way.
ECS_DEFAULT_GROUP_PREFIXES = ("family:", "service:")
ECS_SERVICE_STARTED_BY_PREFIX = "ecs-svc/"


class IgnoreReason(StrEnum):
    NOT_IN_CLUSTER = "NOT_IN_CLUSTER"
    OWN_DCGM_TASK = "OWN_DCGM_TASK"
    NOT_STOPPED = "NOT_STOPPED"
    STOP_CODE_NOT_GPU = "STOP_CODE_NOT_GPU"
    NOT_A_GPU_TASK = "NOT_A_GPU_TASK"
    EXITED_CLEANLY = "EXITED_CLEANLY"


def task_family(task_definition_arn: str) -> str:
    """arn:<partition>:ecs:<region>:<account>:task-definition/<family>:<revision> -> family."""
    return task_definition_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def exited_cleanly(task: EcsTask, essential: Set[str] | None) -> bool:
    """Whether the task ended as it should: every essential container exited 0. A non-essential sidecar's
    exit code (or its lack of one) does not count: ECS stops a task when an essential container exits, and
    the sidecar was merely stopped with it. `essential`: the names the task definition marks essential (None:
    unknown, then every container that reported an exit code must have exited 0)."""
    if essential is None:
        codes = [c.exit_code for c in task.containers if c.exit_code is not None]
        return bool(codes) and all(code == 0 for code in codes)
    judged = [c for c in task.containers if c.name in essential]
    return bool(judged) and all(c.exit_code == 0 for c in judged)


def classify_task(
    task: EcsTask,
    cluster_arn: str,
    *,
    manual: bool,
    previous: Mapping[str, Any] | None,
    dcgm_task_family: str,
    essential: Callable[[], Set[str] | None] = lambda: None,
) -> tuple[Decision, str]:
    """RECOVER, IGNORE or DUPLICATE, with the reason an operator reads. A manual request is an operator's
    judgement, so it skips the checks that second-guess it (exit code, stop code, event version).
    `essential`: reads the essential container names of the task's definition (see exited_cleanly), only
    when the exit codes are what is left to judge."""
    ignore: tuple[IgnoreReason, str] | None = None
    if task.cluster_arn != cluster_arn:
        ignore = (IgnoreReason.NOT_IN_CLUSTER, f"task runs in {task.cluster_arn}, not in {cluster_arn}")
    elif task_family(task.task_definition_arn) == dcgm_task_family:
        # Only we run the check's family. Not startedBy: Step Functions stamps "AWS Step Functions" on every
        # ecs:runTask.sync task, so a customer's own GPU pipeline looks the same and must be recovered.
        ignore = (IgnoreReason.OWN_DCGM_TASK, f"task definition family {dcgm_task_family} is our DCGM check")
    elif not task.gpu_ids:
        ignore = (IgnoreReason.NOT_A_GPU_TASK, "no container of the task had GPUs (gpuIds empty)")
    elif not manual and task.last_status != "STOPPED":
        ignore = (IgnoreReason.NOT_STOPPED, f"task is {task.last_status}, not STOPPED")
    elif not manual and task.stop_code in NEVER_GPU_STOP_CODES:
        ignore = (IgnoreReason.STOP_CODE_NOT_GPU, f"stop code {task.stop_code} is never a GPU fault")
    elif not manual and exited_cleanly(task, essential()):
        ignore = (IgnoreReason.EXITED_CLEANLY, "every essential container exited with code 0")
    if ignore:
        return Decision.IGNORE, f"{ignore[0].value}: {ignore[1]}"
    if not manual and previous is not None:
        seen_version = int(previous.get("lastEventVersion", -1))
        if task.version <= seen_version:
            return Decision.DUPLICATE, f"event version {task.version} already recorded (last {seen_version})"
        if previous.get("recoveryExecution"):
            return Decision.DUPLICATE, f"task already handled by {previous['recoveryExecution']}"
    return Decision.RECOVER, f"GPU task stopped: {describe_stop(task)}"


def describe_stop(task: EcsTask) -> str:
    exits = [f"{c.name}={c.exit_code}" for c in task.containers if c.exit_code not in (None, 0)]
    parts = [task.stop_code or "no stop code"]
    if exits:
        parts.append("exit " + ", ".join(exits))
    if task.stopped_reason:
        parts.append(task.stopped_reason)
    return "; ".join(parts)


def job_identity(task: EcsTask, job_key: str) -> tuple[str, bool]:
    """(job id, whether an ECS service owns the tasks). Tasks without the key are a job of one, and so are
    tasks whose key is one ECS fills in by default (see ECS_DEFAULT_GROUP_PREFIXES): a crashed service
    replica or batch task must not stop its healthy namesakes."""
    value: str | None
    if job_key == "group":
        value = None if (task.group or "").startswith(ECS_DEFAULT_GROUP_PREFIXES) else task.group
    elif job_key == "startedBy":
        value = None if (task.started_by or "").startswith(ECS_SERVICE_STARTED_BY_PREFIX) else task.started_by
    else:
        tag = job_key.removeprefix("tag:")
        value = next((t["value"] for t in task.tags if t.get("key") == tag), None)
    managed_by_service = bool(
        (task.group or "").startswith("service:") or (task.started_by or "").startswith(ECS_SERVICE_STARTED_BY_PREFIX)
    )
    return (value or f"task:{task.task_id}"), managed_by_service


def same_job(task: EcsTask, job_id: str, job_key: str) -> bool:
    return job_identity(task, job_key)[0] == job_id


def reboots_in_window(reboot_times: Iterable[str], now: datetime, window_hours: int) -> int:
    start = now - timedelta(hours=window_hours)
    return sum(1 for t in reboot_times if datetime.fromisoformat(t) >= start)


def plan_node_step(
    verdict: Verdict,
    plan: CheckPlan,
    reboots_in_window: int,
    max_reboots: int,
    dry_run: bool,
    *,
    reset_enabled: bool = False,
    reset_gpus: Sequence[int] = (),
) -> tuple[NodeStep, str]:
    """What to do with a node after a check: the cheapest action that works, never a loop.
    ``reset_gpus``: the GPU indexes a RESET_GPU verdict names (a reset needs at least one)."""
    after_reboot = plan.phase == "AFTER_REBOOT"
    after_reset = plan.phase == "AFTER_RESET"
    if verdict.status == VerdictStatus.INCONCLUSIVE:
        if plan.inconclusive_checks == 0:
            return NodeStep.RECHECK, "check inconclusive: one more check"
        if dry_run:
            # The job was not stopped, so its GPUs were busy: nothing was observed, and nothing is recorded.
            return (
                NodeStep.DRY_RUN,
                "dry run: two inconclusive checks (the job still holds the GPUs?): nothing observed",
            )
        return NodeStep.SUSPECT, "two inconclusive checks: a human should look; not rebooting on a guess"
    if verdict.status == VerdictStatus.HEALTHY or verdict.action in (RepairAction.NONE, RepairAction.RESTART_APP):
        if after_reboot:
            return NodeStep.RELEASE_REPAIRED, "GPUs healthy after the reboot"
        if after_reset:
            return NodeStep.RELEASE_REPAIRED, "GPUs healthy after the GPU reset"
        if verdict.status == VerdictStatus.HEALTHY and verdict.action != RepairAction.RESTART_APP:
            return NodeStep.RELEASE, "GPUs healthy"
        return NodeStep.RELEASE, "GPUs usable: the application should be restarted, not the node"
    step, reason = _repair_step(
        verdict, plan, reboots_in_window, max_reboots, reset_enabled=reset_enabled, reset_gpus=reset_gpus
    )
    if dry_run:
        return NodeStep.DRY_RUN, f"dry run: would {step.value.lower().replace('_', ' ')} ({reason})"
    return step, reason


def _repair_step(
    verdict: Verdict,
    plan: CheckPlan,
    reboots_in_window: int,
    max_reboots: int,
    *,
    reset_enabled: bool,
    reset_gpus: Sequence[int],
) -> tuple[NodeStep, str]:
    if verdict.action == RepairAction.REPLACE:
        return NodeStep.QUARANTINE, "DCGM says the GPU must be replaced"
    if plan.phase == "AFTER_REBOOT":
        return NodeStep.QUARANTINE, "the fault survived a reboot"
    escalation = ""
    if verdict.action == RepairAction.RESET_GPU and plan.phase == "INITIAL":
        if reset_enabled and reset_gpus:
            gpus = ", ".join(str(i) for i in reset_gpus)
            return NodeStep.RESET_GPU, f"reset GPU {gpus} (nvidia-smi --gpu-reset), then re-check"
        escalation = (
            "GPU reset disabled (GPU_RESET_ENABLED=false): " if not reset_enabled else "no GPU index to reset: "
        )
    elif plan.phase == "AFTER_RESET":
        escalation = (
            f"the GPU reset did not complete ({plan.reset_status}): "
            if plan.reset_status
            else "the fault survived the GPU reset: "
        )
    if reboots_in_window >= max_reboots:
        return (
            NodeStep.QUARANTINE,
            f"{escalation}reboot budget exhausted ({reboots_in_window} of {max_reboots} in the window)",
        )
    return NodeStep.REBOOT, f"{escalation}reboot {reboots_in_window + 1} of {max_reboots} allowed in the window"


def gpu_reset_indexes(gpu_indexes: Sequence[int]) -> str:
    """The GPU reset document's parameter for these GPUs: their indexes, comma-separated (the document's
    allowedPattern, infra/gpu_reset_document.py)."""
    return ",".join(str(int(index)) for index in gpu_indexes)


# Node outcomes that leave the node's state unknown to this execution.
UNRESOLVED = frozenset({NodeOutcome.SUSPECT, NodeOutcome.BUSY, NodeOutcome.LOST, NodeOutcome.UNCHECKED})

# Node statuses only a human clears (gpu-recovery node release): no recovery locks, checks or repairs them.
HELD_FOR_A_HUMAN = {"QUARANTINED": NodeOutcome.QUARANTINED, "HELD": NodeOutcome.HELD}


def decide_job(
    results: Sequence[NodeResult],
    restart_count: int,
    max_restarts: int,
    restart_on_healthy: bool,
    managed_by_service: bool,
) -> tuple[JobOutcomeKind, str]:
    """Restart only when a GPU fault was found and dealt with; restarting a crashing application loops."""
    outcomes = {r.outcome for r in results}
    # A dry run found the fault and recorded what it would do: decide the job as if it had.
    gpu_fault_handled = bool(
        outcomes & {NodeOutcome.REPAIRED, NodeOutcome.QUARANTINED, NodeOutcome.HELD, NodeOutcome.DRY_RUN}
    )
    unfinished = sorted(r.node_id for r in results if r.unfinished)
    if unfinished:
        # E.g. a quarantined node that could not be drained: a restart could be placed on it.
        return JobOutcomeKind.FAILED, f"node(s) {', '.join(unfinished)} left unfinished: a human should look"
    unresolved = sorted(r.node_id for r in results if r.outcome in UNRESOLVED)
    if unresolved and not gpu_fault_handled:
        return JobOutcomeKind.FAILED, f"node(s) {listing(unresolved, NODES_LISTED)} unresolved: a human should look"
    if not gpu_fault_handled and not restart_on_healthy:
        return JobOutcomeKind.FAILED, "all GPUs healthy: the failure is the application's, not restarted"
    if restart_count >= max_restarts:
        return JobOutcomeKind.FAILED, f"restart budget exhausted ({restart_count} of {max_restarts})"
    if managed_by_service:
        return JobOutcomeKind.SERVICE_RESTARTS, "the ECS service scheduler replaces its own tasks"
    if gpu_fault_handled:
        return JobOutcomeKind.RESTARTED, "GPU fault handled: restarting the job"
    return JobOutcomeKind.RESTARTED, "all GPUs healthy; restarting as configured (RESTART_ON_HEALTHY)"


def decide_node_lock(
    state: Mapping[str, Any] | None,
    me: str,
    failure_at: str | None,
    lock_waits: int,
    max_waits: int,
    *,
    owner_running: bool = True,
) -> tuple[LockOutcome, NodeResult | None]:
    """Whether this execution may check the node now, must wait, or can reuse another's outcome.
    `owner_running`: whether the execution holding the lock still runs; a dead owner's lock is taken over
    (the caller does it atomically, conditional on that same owner)."""
    if state is None:
        return LockOutcome.ACQUIRED, None
    node_id = str(state["nodeId"])
    if state.get("status") in HELD_FOR_A_HUMAN:
        outcome = HELD_FOR_A_HUMAN[str(state["status"])]
        reason = (
            f"{state['status'].lower()} since {state.get('updatedAt')}: {state.get('reason', 'no reason recorded')}"
        )
        return LockOutcome.DONE, NodeResult(node_id=node_id, outcome=outcome, reason=reason)
    owner = state.get("lockOwner")
    if owner and owner != me and owner_running:
        if lock_waits < max_waits:
            return LockOutcome.WAIT, None
        reason = f"still being repaired by {owner} after {lock_waits} waits"
        return LockOutcome.DONE, NodeResult(node_id=node_id, outcome=NodeOutcome.BUSY, reason=reason, handled_by=owner)
    checked_at, checked_by = state.get("lastCheckedAt"), state.get("lastCheckedBy")
    if (
        failure_at
        and checked_at
        and checked_by != me
        and state.get("status") == "HEALTHY"
        and datetime.fromisoformat(checked_at) >= datetime.fromisoformat(failure_at)
    ):
        outcome = NodeOutcome(state.get("lastOutcome", NodeOutcome.HEALTHY))
        reason = f"checked by {checked_by} at {checked_at}, after this failure: {outcome.value}"
        return LockOutcome.DONE, NodeResult(node_id=node_id, outcome=outcome, reason=reason, handled_by=checked_by)
    return LockOutcome.ACQUIRED, None


# Steps that take a node out of service to repair it: the fleet breaker bounds how many run at once.
REPAIR_STEPS = frozenset({NodeStep.REBOOT, NodeStep.RESET_GPU})


def repair_slots(cluster_size: int, max_percent: int) -> int:
    """How many nodes may be rebooted or reset at once: a share of the cluster, never zero (a small cluster
    must still be able to heal one node at a time)."""
    return max(1, cluster_size * max_percent // 100)


def breaker_open_step(in_repair: Sequence[str], slots: int) -> tuple[NodeStep, str]:
    """Too many nodes in repair at once: a fleet-wide cause (a driver or AMI rollout) is likelier than that many
    bad GPUs, and repairing them all would take the cluster down. Hold the node out of service for a human:
    HOLD drains and pages, and never terminates (TERMINATE_QUARANTINED does not apply)."""
    return (
        NodeStep.HOLD,
        f"fleet breaker open: {len(in_repair)} of {slots} repair slot(s) in use "
        f"({', '.join(sorted(in_repair))}); held for a human instead of repaired",
    )
