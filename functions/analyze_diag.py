"""AnalyzeDiag: read the DCGM check's exit code and output, record the verdict, choose the next step."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from recovery import clock
from recovery.aws import Ecs, Logs, awslogs_stream
from recovery.diagnosis import RESULT_MARKER, check_task, gpu_summary, instant, reset_targets, verdict_from_check
from recovery.models import NodeStep
from recovery.observability import count_by, logger, metrics, traced_step_handler
from recovery.policy import REPAIR_STEPS, breaker_open_step, gpu_reset_indexes, plan_node_step, repair_slots
from recovery.requests import Analysis, NodeStepRequest
from recovery.settings import Settings, get_settings
from recovery.tables import Tables

# The awslogs driver ships lines asynchronously (PutLogEvents in batches), so the task can be STOPPED, and this step
# running, before the result line is readable in CloudWatch Logs. Blocking mode (infra/dcgm_task.py) keeps lines
# from being dropped, not from arriving late: read again for a short while before calling the output unreadable.
LOG_READ_ATTEMPTS = 4
LOG_READ_INTERVAL_SECONDS = 5


def check_output(check: dict[str, Any], container: str, ecs: Ecs, logs: Logs) -> str | None:
    """The check container's log, found where its task definition's awslogs configuration puts it."""
    task = check_task(check)
    if task is None:
        return None
    location = ecs.log_location(task["TaskDefinitionArn"], container)
    if location is None:
        return None
    group, prefix = location
    stream = awslogs_stream(prefix, container, task["TaskArn"])
    text = logs.read_stream(group, stream)
    for _ in range(LOG_READ_ATTEMPTS - 1):
        if text is not None and RESULT_MARKER.strip() in text:
            break
        clock.sleep(LOG_READ_INTERVAL_SECONDS)
        text = logs.read_stream(group, stream)
    return text


def claim_repair_slot(
    step: NodeStep, reason: str, node_id: str, *, me: str, now: datetime, settings: Settings, ecs: Ecs, tables: Tables
) -> tuple[NodeStep, str]:
    """The fleet breaker: a reboot or reset needs one of the cluster's repair slots."""
    slots = repair_slots(ecs.container_instance_count(), settings.MAX_NODES_IN_REPAIR_PERCENT)
    taken, others = tables.take_repair_slot(
        settings.ECS_CLUSTER_NAME, node_id, me, now=now, lease=settings.repair_lease(), slots=slots
    )
    if taken:
        return step, reason
    metrics.add_metric(name="FleetBreakerOpen", unit=MetricUnit.Count, value=1)
    return breaker_open_step(others, slots)


def analyze(request: NodeStepRequest, settings: Settings, ecs: Ecs, logs: Logs, tables: Tables) -> Analysis:
    container = settings.DCGM_CONTAINER_NAME
    node_id = request.node.ec2_instance_id
    # The failed task's GPUs and start weigh in only on the node it ran on: XIDs from before it started belong
    # to earlier work. Elsewhere which GPUs it used is unknown.
    on_failed_node = request.failure.ec2_instance_id == node_id
    task_gpu_ids = request.failure.gpu_ids if on_failed_node else None
    since = instant(request.failure.started_at) if on_failed_node else None
    log_text = check_output(request.check, container, ecs, logs)
    # After a successful GPU reset the XIDs that led to it are history (a failed reset escalates anyway).
    after_reset = request.check_plan.phase == "AFTER_RESET" and request.check_plan.reset_status is None
    verdict = verdict_from_check(request.check, log_text, container, task_gpu_ids, since=since, after_reset=after_reset)
    count_by("NodeVerdict", "Action", verdict.action.value)
    reset_gpus = reset_targets(verdict)
    step, reason = plan_node_step(
        verdict,
        request.check_plan,
        request.reboots_in_window,
        settings.MAX_REBOOTS_PER_NODE,
        request.dry_run,
        reset_enabled=settings.GPU_RESET_ENABLED,
        reset_gpus=reset_gpus,
    )
    me, now = request.execution.id, clock.utcnow()
    if step in REPAIR_STEPS:
        step, reason = claim_repair_slot(
            step, reason, node_id, me=me, now=now, settings=settings, ecs=ecs, tables=tables
        )
    # The per-GPU findings travel with the reason: node row, history row, notification.
    findings = gpu_summary(verdict)
    if findings:
        reason = f"{reason} [{findings}]"
    if not tables.update_node(
        node_id,
        me,
        {"lastVerdict": verdict.dump(), "lastCheckedAt": now.isoformat(), "lastCheckedBy": me},
        release=False,
    ):
        # An operator quarantined the node, or another execution took its lock over: act on nothing.
        tables.release_repair_slot(settings.ECS_CLUSTER_NAME, node_id, me)
        logger.warning("Node lock lost", node_id=node_id, would_have=step.value)
        return Analysis(verdict=verdict, next=NodeStep.LOST, reason=f"node lock lost before acting ({reason})")
    tables.add_history(
        node_id,
        "DIAGNOSIS",
        me,
        now,
        {"phase": request.check_plan.phase, "verdict": verdict.dump(), "next": step.value, "reason": reason},
    )
    logger.info("Diagnosis", node_id=node_id, status=verdict.status.value, action=verdict.action.value, next=step.value)
    gpus = gpu_reset_indexes(reset_gpus) if step == NodeStep.RESET_GPU else None
    return Analysis(verdict=verdict, next=step, reason=reason, reset_gpus=gpus)


@traced_step_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    request = NodeStepRequest.model_validate(event)
    ecs = Ecs(settings.ECS_CLUSTER_NAME)
    return analyze(request, settings, ecs, Logs(), Tables.from_settings(settings)).dump()
