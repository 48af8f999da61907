"""CleanupExecution: an EventBridge rule sends every "Step Functions Execution Status Change" of the recovery
state machine that ended FAILED, TIMED_OUT or ABORTED here. Whatever that execution still holds (its execution
never reached HandleError, or HandleError itself failed) is put right: the job lock released (status ERROR),
its nodes SUSPECT and drained, its fleet-breaker slots given back, and people told. An execution that
cleaned up after itself holds nothing: then nothing is written and, unless it was stopped from outside
(TIMED_OUT, ABORTED: HandleError never ran), nobody is paged twice. The failed task the execution handled is
marked ERROR, as HandleError would."""

from __future__ import annotations

import json
from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from recovery import clock
from recovery.abandon import release_everything
from recovery.aws import Ecs, Sns
from recovery.models import CamelModel, ExecutionContext, TaskRecoveryStatus, request_task_arn
from recovery.notify import error_notification
from recovery.observability import logger, metrics, step_handler
from recovery.settings import get_settings
from recovery.tables import Tables

# Ended without HandleError: nobody has been told yet.
STOPPED_FROM_OUTSIDE = frozenset({"TIMED_OUT", "ABORTED"})


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


class Cleanup(CamelModel):
    execution_arn: str
    status: str
    released_jobs: list[str]
    released_nodes: list[str]
    released_slots: list[str]
    notified: bool


def clean_up(change: ExecutionStatusChange, ecs: Ecs, tables: Tables, sns: Sns) -> Cleanup:
    me = change.execution_arn
    why = f"recovery {change.status}" + (f": {change.error}" if change.error else "")
    now = clock.utcnow()
    released = release_everything(me, why, now=now, cluster=ecs.cluster, tables=tables, ecs=ecs)
    task_arn = change.failed_task_arn
    if task_arn:
        tables.mark_task(task_arn, TaskRecoveryStatus.ERROR, now.isoformat(), handled_by=me)
    notify = bool(released.jobs or released.nodes) or change.status in STOPPED_FROM_OUTSIDE
    if notify:
        cause = f"{change.status}: {change.error or ''} {change.cause or ''}".strip()
        notification = error_notification(
            ", ".join(released.jobs) or None,
            f"recovery {change.status}",
            cause,
            ExecutionContext(id=me, name=change.name),
            released.nodes,
            failed_task=task_arn,
        )
        sns.publish(notification.subject, notification.message)
    metrics.add_metric(name="RecoveryCleanedUp", unit=MetricUnit.Count, value=1)
    logger.warning("Execution ended badly", execution=me, status=change.status, jobs=released.jobs)
    return Cleanup(
        execution_arn=me,
        status=change.status,
        released_jobs=released.jobs,
        released_nodes=released.nodes,
        released_slots=released.slots,
        notified=notify,
    )


@step_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    change = ExecutionStatusChange.model_validate(event["detail"])
    ecs = Ecs(settings.ECS_CLUSTER_NAME)
    return clean_up(change, ecs, Tables.from_settings(settings), Sns(settings.NOTIFICATION_TOPIC_ARN)).dump()
