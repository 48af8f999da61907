"""HandleError: after any unexpected error, release the locks this execution holds, record what happened,
and build the alert. The state machine then fails with the original error and cause."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from recovery import clock
from recovery.abandon import suspend_nodes
from recovery.aws import Ecs
from recovery.models import CamelModel, ExecutionContext, Notification, TaskRecoveryStatus, request_task_arn
from recovery.notify import error_notification
from recovery.observability import logger, metrics, step_handler
from recovery.settings import get_settings
from recovery.tables import Tables

CAUSE_KEPT = 1000  # enough to diagnose; DynamoDB items and SNS messages have size limits


class ErrorReport(CamelModel):
    released_job: bool
    released_nodes: list[str]
    notification: Notification


def handle(state: dict[str, Any], execution: ExecutionContext, ecs: Ecs, tables: Tables) -> ErrorReport:
    error = state.get("error") or {}
    name, cause = str(error.get("Error", "Unknown")), str(error.get("Cause", ""))[:CAUSE_KEPT]
    me, now = execution.id, clock.utcnow()
    job = state.get("job") or {}
    job_id = job.get("jobId")
    released_job = bool(job_id) and tables.release_job_after_error(str(job_id), me, now.isoformat(), f"{name}: {cause}")
    released_nodes = suspend_nodes(
        job.get("nodes", []),
        me,
        f"recovery failed mid-way: {name}",
        now=now,
        cluster=ecs.cluster,
        tables=tables,
        ecs=ecs,
    )
    # Before ClassifyFailure succeeded there is no failure yet, only the execution's input (the state itself).
    task_arn = (state.get("failure") or {}).get("taskArn") or request_task_arn(state)
    if task_arn:
        tables.mark_task(task_arn, TaskRecoveryStatus.ERROR, now.isoformat())
    metrics.add_metric(name="RecoveryError", unit=MetricUnit.Count, value=1)
    logger.error("Recovery failed", error=name, cause=cause, job_id=job_id, released_nodes=released_nodes)
    # The whole cause: the alert extracts the error from it (a cut JSON document could not be read).
    notification = error_notification(
        job_id, name, str(error.get("Cause", "")), execution, released_nodes, failed_task=task_arn
    )
    return ErrorReport(released_job=released_job, released_nodes=released_nodes, notification=notification)


@step_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    execution = ExecutionContext.model_validate(event["execution"])
    ecs = Ecs(settings.ECS_CLUSTER_NAME)
    return handle(event.get("state") or {}, execution, ecs, Tables.from_settings(settings)).dump()
