"""RecordReboot / RefundReboot / RecordGpuReset / ReleaseNode / QuarantineNode / HoldNode / MarkNodeSuspect /
RecordDryRun: record a
node's state change (conditional on this execution holding the node lock) and its history row. Each says whether
this execution still owns the node, so that the state machine drains, reboots or terminates nothing it lost."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from recovery import clock
from recovery.aws import Ecs
from recovery.models import (
    CamelModel,
    NodeAction,
    NodeOutcome,
    NodeResult,
    NodeStatus,
    NodeStep,
    RepairAction,
    VerdictStatus,
)
from recovery.notify import error_summary
from recovery.observability import logger, metrics, step_handler
from recovery.requests import Analysis, NodeStepRequest, StepError, Verdict
from recovery.settings import Settings, get_settings
from recovery.tables import MAX_REBOOT_TIMES_KEPT, Tables

# Terminal actions: the node's status afterwards and the outcome the job decision sees.
TERMINAL = {
    NodeAction.QUARANTINE: (NodeStatus.QUARANTINED, NodeOutcome.QUARANTINED),
    NodeAction.HOLD: (NodeStatus.HELD, NodeOutcome.HELD),
    NodeAction.SUSPECT: (NodeStatus.SUSPECT, NodeOutcome.SUSPECT),
    NodeAction.DRY_RUN: (NodeStatus.UNHEALTHY, NodeOutcome.DRY_RUN),
}


class RebootRecord(CamelModel):
    counted: bool
    owned: bool  # False: the lock is gone (an operator or a takeover): drain and reboot nothing
    # WaitForAgent's TimeoutSecondsPath: the node's instance type's expected reboot time (reboots only).
    agent_timeout_seconds: int | None = None


def still_owned(recorded: bool, state: dict[str, Any] | None, me: str, marker: str) -> bool:
    """Whether this execution still owns the node: its conditional write applied, or a retry finds its own lock
    and its own `marker` (lastRebootBy / lastGpuResetBy) already written."""
    state = state or {}
    return recorded or (state.get("lockOwner") == me and state.get(marker) == me)


def record_reboot(request: NodeStepRequest, settings: Settings, tables: Tables) -> RebootRecord:
    """Count the reboot once per execution: a retried step finds lastRebootBy = itself and adds nothing."""
    node_id, me, now = request.node.ec2_instance_id, request.execution.id, clock.utcnow().isoformat()
    reboots = (tables.get_node(node_id) or {}).get("reboots", [])[-(MAX_REBOOT_TIMES_KEPT - 1) :]
    counted, current = tables.update_node_once(
        node_id,
        me,
        {"reboots": [*reboots, now], "lastRebootBy": me, "status": NodeStatus.REBOOTING, "updatedAt": now},
        marker="lastRebootBy",
    )
    owned = still_owned(counted, current, me, "lastRebootBy")
    if counted:
        tables.add_history(
            node_id, "REBOOT", me, clock.utcnow(), {"reason": request.analysis.reason if request.analysis else ""}
        )
        metrics.add_metric(name="NodeRebooted", unit=MetricUnit.Count, value=1)
    timeout = settings.reboot_timeout(request.node.instance_type)
    return RebootRecord(counted=counted, owned=owned, agent_timeout_seconds=timeout)


def record_gpu_reset(request: NodeStepRequest, tables: Tables) -> RebootRecord:
    """A history row for the GPU reset about to be sent (the audit trail says what was done to the node)."""
    node_id, me, now = request.node.ec2_instance_id, request.execution.id, clock.utcnow()
    analysis = request.analysis
    # Once per execution: a retried step finds lastGpuResetBy = itself and records nothing twice.
    recorded, current = tables.update_node_once(
        node_id,
        me,
        {"status": NodeStatus.RESETTING_GPU, "lastGpuResetBy": me, "updatedAt": now.isoformat()},
        marker="lastGpuResetBy",
    )
    owned = still_owned(recorded, current, me, "lastGpuResetBy")
    if recorded:
        detail = {
            "reason": analysis.reason if analysis else "",
            "gpus": (analysis.reset_gpus or "") if analysis else "",
        }
        tables.add_history(node_id, "GPU_RESET", me, now, detail)
        metrics.add_metric(name="NodeGpuReset", unit=MetricUnit.Count, value=1)
    return RebootRecord(counted=recorded, owned=owned)


def refund_reboot(request: NodeStepRequest, tables: Tables) -> Analysis:
    """RebootInstance failed after RecordReboot counted it: the reboot did not happen, so it consumes no budget and
    the audit trail says so. Returns the analysis MarkNodeSuspect records (the node stays drained for a human)."""
    node_id, me, now = request.node.ec2_instance_id, request.execution.id, clock.utcnow()
    error = request.error or StepError(Error="Unknown", Cause="")
    why = f"reboot not performed: {error_summary(error.error, error.cause)}"
    # History first: both writes are idempotent, so a retry after a crash between them completes the refund.
    tables.relabel_history(node_id, me, "REBOOT", "REBOOT_NOT_PERFORMED", {"reason": why})
    if tables.refund_reboot(node_id, me, now.isoformat()):
        metrics.add_metric(name="RebootNotPerformed", unit=MetricUnit.Count, value=1)
    verdict = (
        request.analysis.verdict
        if request.analysis
        else Verdict(status=VerdictStatus.INCONCLUSIVE, action=RepairAction.NONE, reasons=[why])
    )
    return Analysis(verdict=verdict, next=NodeStep.SUSPECT, reason=why)


def finish_node(request: NodeStepRequest, action: NodeAction, ecs: Ecs, tables: Tables) -> NodeResult:
    node_id, me, now = request.node.ec2_instance_id, request.execution.id, clock.utcnow()
    analysis = request.analysis
    reason = analysis.reason if analysis else action
    fields: dict[str, Any] = {"updatedAt": now.isoformat()}
    if action == NodeAction.RELEASE:
        repaired = request.check_plan.phase in ("AFTER_REBOOT", "AFTER_RESET")
        outcome = NodeOutcome.REPAIRED if repaired else NodeOutcome.HEALTHY
        fields |= {"status": NodeStatus.HEALTHY, "lastOutcome": outcome.value, "reason": reason}
    elif action == NodeAction.DRY_RUN and analysis and analysis.verdict.status == VerdictStatus.INCONCLUSIVE:
        # Dry run without an observation (the job kept its GPUs): release the lock, claim nothing about the GPUs.
        outcome = NodeOutcome.UNCHECKED
        fields |= {"status": NodeStatus.UNCHECKED, "reason": reason}
    else:
        status, outcome = TERMINAL[action]
        fields |= {"status": status, "lastOutcome": outcome.value, "reason": reason}
    if action == NodeAction.RELEASE and not request.dry_run:
        # Verified: restarts may land on it again. Before the lock goes, so a retry after a crash clears it too.
        # A quarantined, held or suspect node keeps the mark (and is drained) until an operator releases it.
        ecs.clear_under_repair(request.node.container_instance_arn)
    recorded = tables.update_node(node_id, me, fields, release=True)
    # The node is out of repair whatever its outcome: give its fleet-breaker slot back (a no-op if not held).
    tables.release_repair_slot(ecs.cluster, node_id, me)
    if recorded:
        tables.add_history(node_id, action, me, now, {"outcome": outcome.value, "reason": reason})
        if outcome == NodeOutcome.QUARANTINED:
            metrics.add_metric(name="NodeQuarantined", unit=MetricUnit.Count, value=1)
    history = tables.history(node_id, me)
    if not recorded and not any(row["kind"] == action for row in history):
        # Not a retry of this step (that finds its own row): the lock was taken from this execution mid-repair.
        outcome, reason = NodeOutcome.LOST, f"lost the node before recording {action}: {reason}"
    # What was done, for a node that needed more than a check: a healthy node (most nodes of a large job) would
    # only repeat its reason, once per node in the Map's result (the state's 256 KB).
    done = history if outcome != NodeOutcome.HEALTHY else []
    actions = [f"{row['kind']}: {row['detail'].get('reason', '')}" for row in done]
    logger.info("Node finished", node_id=node_id, outcome=outcome.value, reason=reason)
    return NodeResult(
        node_id=node_id,
        container_instance_arn=request.node.container_instance_arn,
        outcome=outcome,
        reason=reason,
        actions=actions,
    )


def record(request: NodeStepRequest, settings: Settings, tables: Tables, ecs: Ecs | None = None) -> CamelModel:
    action = request.action
    if action == NodeAction.REBOOTING:
        return record_reboot(request, settings, tables)
    if action == NodeAction.REBOOT_NOT_PERFORMED:
        return refund_reboot(request, tables)
    if action == NodeAction.RESETTING_GPU:
        return record_gpu_reset(request, tables)
    if action is None:
        raise ValueError("RecordNodeState needs an action")
    return finish_node(request, action, ecs or Ecs(settings.ECS_CLUSTER_NAME), tables)


@step_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    return record(NodeStepRequest.model_validate(event), settings, Tables.from_settings(settings)).dump()
