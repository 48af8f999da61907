"""ClassifyFailure: normalise the event or manual request, decide RECOVER / IGNORE / DUPLICATE, and
record the task and its job. A malformed input raises InvalidInput before anything is written."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from recovery import clock
from recovery.aws import Ec2, Ecs, task_definition_family
from recovery.ecs_task import EcsTask, ManualRequest, TaskStateChangeEvent
from recovery.models import (
    CamelModel,
    Decision,
    ExecutionContext,
    Failure,
    InvalidInput,
    JobPlan,
    JobTooLarge,
    TaskRecoveryStatus,
)
from recovery.observability import logger, metrics, traced_step_handler
from recovery.policy import classify_task, exited_cleanly, job_identity
from recovery.relaunch import fill_security_groups, launch_record, network_interface
from recovery.settings import Settings, get_settings
from recovery.tables import Tables

# task/CLUSTER/ID (IDs are 32 hex characters today; older tasks, and moto, have UUIDs with dashes).
TASK_ARN = re.compile(r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task/[A-Za-z0-9_-]+/[A-Za-z0-9-]+$")
# Ranks of a distributed job crash within moments of each other when one GPU dies; tasks of the job that
# stopped this close to the failure belong to the same incident (their nodes are checked, they restart).
INCIDENT_WINDOW = timedelta(minutes=10)


class Classification(CamelModel):
    decision: Decision
    reason: str
    dry_run: bool
    settings: dict[str, Any]
    failure: Failure | None = None
    job: JobPlan | None = None


def _problems(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in error.errors())


def read_request(request: Any, settings: Settings, ecs: Ecs) -> tuple[EcsTask, bool, str, bool]:
    """(task, manual, reason, dry run) from either input form; InvalidInput says what is wrong."""
    if not isinstance(request, dict):
        raise InvalidInput(f"execution input must be a JSON object, got {type(request).__name__}")
    if {"source", "detail-type", "detail"} & request.keys():
        try:
            event = TaskStateChangeEvent.model_validate(request)
        except ValidationError as error:
            raise InvalidInput(f"not a valid ECS Task State Change event: {_problems(error)}") from None
        return event.detail, False, f"ECS event version {event.detail.version}", settings.DRY_RUN
    if "taskArn" in request:
        try:
            manual = ManualRequest.model_validate(request)
        except ValidationError as error:
            raise InvalidInput(f"not a valid manual request: {_problems(error)}") from None
        if not TASK_ARN.match(manual.task_arn):
            raise InvalidInput(f"taskArn {manual.task_arn!r} is not an ECS task ARN (arn:aws:ecs:…:task/CLUSTER/ID)")
        found = ecs.describe_tasks([manual.task_arn])
        if not found:
            raise InvalidInput(f"task {manual.task_arn} not found in cluster {settings.ECS_CLUSTER_NAME}")
        return found[0], True, manual.reason, settings.DRY_RUN or manual.dry_run
    raise InvalidInput(
        "input is neither an ECS Task State Change event (source, detail-type, detail) "
        "nor a manual request (taskArn, reason, dryRun)"
    )


def task_id(task_arn: str) -> str:
    """The last part of a task ARN, in both ECS ARN formats (task/<cluster>/<id> and the older task/<id>)."""
    return task_arn.rsplit("/", 1)[-1]


def task_item(task: EcsTask, job_id: str, ec2_ids: dict[str, str], now: str, launch: dict[str, Any]) -> dict[str, Any]:
    item = {
        "taskArn": task.task_arn,
        "jobId": job_id,
        "clusterArn": task.cluster_arn,
        "containerInstanceArn": task.container_instance_arn,
        "ec2InstanceId": ec2_ids.get(task.container_instance_arn or ""),
        "taskDefinitionArn": task.task_definition_arn,
        "group": task.group,
        "startedBy": task.started_by,
        "overrides": task.overrides,
        "gpuIds": task.gpu_ids,
        "exitCodes": {c.name: c.exit_code for c in task.containers if c.exit_code is not None},
        "stopCode": task.stop_code,
        "stoppedReason": task.stopped_reason,
        "stoppedAt": task.stopped_at.isoformat() if task.stopped_at else None,
        "lastEventVersion": task.version,
        "launch": launch,
        "updatedAt": now,
    }
    return {k: v for k, v in item.items() if v is not None}


def with_tags(task: EcsTask, ecs: Ecs) -> EcsTask:
    """The event carries no tags, and StopJobTasks' StopTask deletes them: read them now, for JOB_KEY=tag:<K>
    and for the restart. A task DescribeTasks no longer shows (stopped over an hour ago) keeps none."""
    if task.tags:
        return task
    found = ecs.describe_tasks([task.task_arn])
    return task.model_copy(update={"tags": found[0].tags}) if found else task


def job_tasks(
    task: EcsTask,
    job_id: str,
    settings: Settings,
    ecs: Ecs,
    tables: Tables,
    *,
    essential: Callable[[str], frozenset[str]],
) -> list[EcsTask]:
    """The other tasks of the job: running ones, and ones that stopped abnormally in the same incident and were
    not already restarted by an earlier recovery. A rank that had finished its work (every essential container
    exited 0) is not part of the incident: it is neither checked nor restarted. Looked up by the task definition
    families the job runs (the failed task's, and those its recorded tasks ran), never by listing the cluster."""
    if job_id.startswith("task:"):
        return []
    failed_at = task.stopped_at or clock.utcnow()
    recorded = tables.job_task_items(job_id)
    restarted = {item["taskArn"] for item in recorded if item.get("restartedAs")}
    definitions = [task.task_definition_arn, *(item.get("taskDefinitionArn") for item in recorded)]
    families = sorted({task_definition_family(arn) for arn in definitions if arn})
    stopped = [
        other
        for other in ecs.family_tasks(families, "STOPPED")
        if other.stopped_at is not None
        and abs(other.stopped_at - failed_at) <= INCIDENT_WINDOW
        and not exited_cleanly(other, essential(other.task_definition_arn))
        and other.task_arn not in restarted
    ]
    return [
        other
        for other in ecs.family_tasks(families, "RUNNING") + stopped
        if other.task_arn != task.task_arn and job_identity(other, settings.JOB_KEY)[0] == job_id
    ]


def classify(
    request: Any, execution: ExecutionContext, settings: Settings, ecs: Ecs, tables: Tables, *, ec2: Ec2
) -> Classification:
    task, manual, reason, dry_run = read_request(request, settings, ecs)
    common: dict[str, Any] = {"dry_run": dry_run, "settings": settings.workflow_settings()}
    # One job's tasks share a few task definitions: read each once.
    essential = cache(ecs.essential_containers)
    previous = tables.get_task(task.task_arn)
    if previous and previous.get("recoveryExecution") == execution.id:
        # A retry of this step after its own write (a crash or throttling after record_failure): not a duplicate.
        previous = None
    decision, why = classify_task(
        task,
        ecs.cluster_arn,
        manual=manual,
        previous=previous,
        dcgm_task_family=settings.DCGM_TASK_FAMILY,
        essential=lambda: essential(task.task_definition_arn),
    )
    if decision != Decision.RECOVER:
        if decision == Decision.IGNORE:
            # Reasons read "CODE: detail"; the code is a small, fixed set, fit for a metric dimension.
            metrics.add_dimension(name="Reason", value=why.partition(":")[0])
        metrics.add_metric(
            name="TaskIgnored" if decision == Decision.IGNORE else "DuplicateEvent", unit=MetricUnit.Count, value=1
        )
        logger.info("Not recovering", decision=decision.value, reason=why, task_arn=task.task_arn)
        return Classification(decision=decision, reason=why, **common)

    task = with_tags(task, ecs)
    job_id, managed_by_service = job_identity(task, settings.JOB_KEY)
    others = job_tasks(task, job_id, settings, ecs, tables, essential=essential)
    instances = list(dict.fromkeys(t.container_instance_arn for t in [task, *others] if t.container_instance_arn))
    if len(instances) > settings.MAX_JOB_NODES:
        # Checked before anything is written: HandleError alerts, nothing is locked or drained.
        raise JobTooLarge(
            f"job {job_id} spans {len(instances)} nodes, more than MAX_JOB_NODES={settings.MAX_JOB_NODES} "
            "(the bound that keeps a recovery within Step Functions' 25,000 history events): not recovered"
        )
    nodes = ecs.nodes(instances)
    ec2_ids = {arn: node.ec2_instance_id for arn, node in nodes.items()}
    now = clock.utcnow().isoformat()
    interfaces = [i for t in [task, *others] if (i := network_interface(t).get("networkInterfaceId"))]
    groups = ec2.security_groups(interfaces)
    item, *siblings = [task_item(t, job_id, ec2_ids, now, launch_record(t, groups)) for t in [task, *others]]
    fill_security_groups([item, *siblings])
    item |= {
        "decision": decision.value,
        "reason": why,
        "recoveryExecution": execution.id,
        "recoveryStatus": TaskRecoveryStatus.RECOVERING,
    }
    if not tables.record_failure(item, job_id, now, manual=manual, me=execution.id):
        return Classification(decision=Decision.DUPLICATE, reason="a newer event for this task is recorded", **common)
    for sibling in siblings:
        tables.record_sibling(sibling)

    metrics.add_metric(name="RecoveryStarted", unit=MetricUnit.Count, value=1)
    failure = Failure(
        task_arn=task.task_arn,
        cluster_arn=task.cluster_arn,
        source="manual" if manual else "event",
        reason=reason,
        container_instance_arn=task.container_instance_arn,
        ec2_instance_id=ec2_ids.get(task.container_instance_arn or ""),
        gpu_ids=task.gpu_ids,
        exit_code=next((c.exit_code for c in task.containers if c.exit_code not in (None, 0)), None),
        stop_code=task.stop_code,
        stopped_reason=task.stopped_reason,
        started_at=task.started_at.isoformat() if task.started_at else None,
        stopped_at=(task.stopped_at or clock.utcnow()).isoformat(),
        version=task.version,
    )
    job = JobPlan(
        job_id=job_id,
        # Task ids, not ARNs: StopTask and DescribeTasks take either with the cluster (ECS API reference), RestartJob
        # finds the ARNs in the task table, and these lists are in the state three times (the job, StopJobTasks'
        # items, the stop poll's batches): 8 tasks on each of 128 nodes as ARNs would pass Step Functions' 256 KB.
        tasks=[task_id(t.task_arn) for t in [task, *others]],
        surviving_tasks=[task_id(t.task_arn) for t in [task, *others] if t.last_status != "STOPPED"],
        nodes=[nodes[arn] for arn in instances if arn in nodes],
        managed_by_service=managed_by_service,
    )
    logger.info("Recovering", job_id=job_id, nodes=len(job.nodes), tasks=len(job.tasks))
    return Classification(decision=decision, reason=why, failure=failure, job=job, **common)


@traced_step_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    execution = ExecutionContext.model_validate(event["execution"])
    ecs = Ecs(settings.ECS_CLUSTER_NAME)
    return classify(event.get("request"), execution, settings, ecs, Tables.from_settings(settings), ec2=Ec2()).dump()
