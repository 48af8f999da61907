"""RecordReboot / RecordGpuReset / ReleaseNode / QuarantineNode / HoldNode / MarkNodeSuspect / RecordDryRun: record a
node's state change (conditional on this execution holding the node lock) and its history row. Each says whether
this execution still owns the node, so that the state machine drains, reboots or terminates nothing it lost."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from recovery import clock
from recovery.models import CamelModel, NodeOutcome, NodeResult, VerdictStatus
from recovery.observability import logger, metrics, step_handler
from recovery.requests import NodeStepRequest
from recovery.settings import Settings, get_settings
from recovery.tables import MAX_REBOOT_TIMES_KEPT, Tables

# Terminal actions: the node's status afterwards and the outcome the job decision sees.
TERMINAL = {
    "QUARANTINE": ("QUARANTINED", NodeOutcome.QUARANTINED),
    "HOLD": ("HELD", NodeOutcome.HELD),
    "SUSPECT": ("SUSPECT", NodeOutcome.SUSPECT),
    "DRY_RUN": ("UNHEALTHY", NodeOutcome.DRY_RUN),
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
    counted = tables.update_node(
        node_id,
        me,
        {"reboots": [*reboots, now], "lastRebootBy": me, "status": "REBOOTING", "updatedAt": now},
        release=False,
        guard="attribute_not_exists(lastRebootBy) OR lastRebootBy <> :me",
    )
    owned = still_owned(counted, None if counted else tables.get_node(node_id), me, "lastRebootBy")
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
    recorded = tables.update_node(
        node_id,
        me,
        {"status": "RESETTING_GPU", "lastGpuResetBy": me, "updatedAt": now.isoformat()},
        release=False,
        guard="attribute_not_exists(lastGpuResetBy) OR lastGpuResetBy <> :me",
    )
    owned = still_owned(recorded, None if recorded else tables.get_node(node_id), me, "lastGpuResetBy")
    if recorded:
        detail = {
            "reason": analysis.reason if analysis else "",
            "commands": (analysis.reset_commands or []) if analysis else [],
        }
        tables.add_history(node_id, "GPU_RESET", me, now, detail)
        metrics.add_metric(name="NodeGpuReset", unit=MetricUnit.Count, value=1)
    return RebootRecord(counted=recorded, owned=owned)


def finish_node(request: NodeStepRequest, action: str, cluster: str, tables: Tables) -> NodeResult:
    node_id, me, now = request.node.ec2_instance_id, request.execution.id, clock.utcnow()
    analysis = request.analysis
    reason = analysis.reason if analysis else action
    fields: dict[str, Any] = {"updatedAt": now.isoformat()}
    if action == "RELEASE":
        repaired = request.check_plan.phase in ("AFTER_REBOOT", "AFTER_RESET")
        outcome = NodeOutcome.REPAIRED if repaired else NodeOutcome.HEALTHY
        fields |= {"status": "HEALTHY", "lastOutcome": outcome.value, "reason": reason}
    elif action == "DRY_RUN" and analysis and analysis.verdict.status == VerdictStatus.INCONCLUSIVE:
        # Dry run without an observation (the job kept its GPUs): release the lock, claim nothing about the GPUs.
        outcome = NodeOutcome.UNCHECKED
        fields |= {"status": "UNCHECKED", "reason": reason}
    else:
        status, outcome = TERMINAL[action]
        fields |= {"status": status, "lastOutcome": outcome.value, "reason": reason}
    recorded = tables.update_node(node_id, me, fields, release=True)
    # The node is out of repair whatever its outcome: give its fleet-breaker slot back (a no-op if not held).
    tables.release_repair_slot(cluster, node_id, me)
    if recorded:
        tables.add_history(node_id, action, me, now, {"outcome": outcome.value, "reason": reason})
        if outcome == NodeOutcome.QUARANTINED:
            metrics.add_metric(name="NodeQuarantined", unit=MetricUnit.Count, value=1)
    history = tables.history(node_id, me)
    if not recorded and not any(row["kind"] == action for row in history):
        # Not a retry of this step (that finds its own row): the lock was taken from this execution mid-repair.
        outcome, reason = NodeOutcome.LOST, f"lost the node before recording {action}: {reason}"
    actions = [f"{row['kind']}: {row['detail'].get('reason', '')}" for row in history]
    logger.info("Node finished", node_id=node_id, outcome=outcome.value, reason=reason)
    return NodeResult(
        node_id=node_id,
        container_instance_arn=request.node.container_instance_arn,
        outcome=outcome,
        reason=reason,
        verdict=analysis.verdict if analysis else None,
        actions=actions,
    )


def record(request: NodeStepRequest, settings: Settings, tables: Tables) -> CamelModel:
    action = request.action or ""
    if action == "REBOOTING":
        return record_reboot(request, settings, tables)
    if action == "RESETTING_GPU":
        return record_gpu_reset(request, tables)
    if action == "RELEASE" or action in TERMINAL:
        return finish_node(request, action, settings.ecs_cluster_name, tables)
    raise ValueError(f"unknown node action {action!r}")


@step_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    return record(NodeStepRequest.model_validate(event), settings, Tables.from_settings(settings)).dump()
