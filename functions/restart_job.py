"""RestartJob: decide the job after its nodes were checked; restart its tasks as they were launched when a
GPU fault was found and dealt with and the budget allows; otherwise mark it FAILED and say why."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from recovery import clock
from recovery.aws import Ecs
from recovery.models import JobOutcome, JobOutcomeKind
from recovery.notify import listing, recovery_notification
from recovery.observability import logger, metrics, traced_step_handler
from recovery.policy import decide_job
from recovery.relaunch import run_task_request
from recovery.requests import JobRequest
from recovery.settings import Settings, get_settings
from recovery.tables import Tables

RUN_TASK_CLIENT_TOKEN_LENGTH = 64  # RunTask's clientToken limit
PROBLEMS_LISTED = 5  # tasks that could not be started, named in the outcome's reason (the rest counted)


def client_token(execution_arn: str, task_arn: str) -> str:
    return hashlib.sha256(f"{execution_arn}|{task_arn}".encode()).hexdigest()[:RUN_TASK_CLIENT_TOKEN_LENGTH]


def restart_tasks(
    request: JobRequest, ecs: Ecs, tables: Tables, taken_from: str | None
) -> tuple[dict[str, str], list[str]]:
    """Start the job's tasks again, with the tasks that joined this recovery (or joined the dead execution
    whose job lock this one took over: `taken_from`)."""
    me, job_id = request.execution.id, request.job.job_id
    joined = [*tables.joined_tasks(job_id, me), *(tables.joined_tasks(job_id, taken_from) if taken_from else [])]
    # The state carries task ids (a smaller state); ClassifyFailure recorded every one of them with its ARN.
    arns = {arn.rsplit("/", 1)[-1]: arn for arn in (row["taskArn"] for row in tables.job_task_items(job_id))}
    task_arns = list(dict.fromkeys([*(arns[i] for i in request.job.tasks if i in arns), *joined]))
    started: dict[str, str] = {}
    problems: list[str] = []
    for record in tables.get_tasks(task_arns):
        run_task, problem = run_task_request(record, ecs.cluster, client_token(me, record["taskArn"]))
        new_arn, problem = ecs.run_task(run_task) if run_task else (None, problem)
        if new_arn:
            started[record["taskArn"]] = new_arn
        else:
            problems.append(f"{record['taskArn'].rsplit('/', 1)[-1]}: {problem}")
    return started, problems


def decide_and_restart(request: JobRequest, settings: Settings, ecs: Ecs, tables: Tables) -> JobOutcome:
    job_id, me = request.job.job_id, request.execution.id
    job = tables.get_job(job_id) or {}
    if job.get("lastRecovery") == me and job.get("lastOutcomeDetail"):
        # A retry of this step after its outcome was recorded: answer the same, decide nothing again.
        return JobOutcome.model_validate(job["lastOutcomeDetail"])
    restart_count = int(job.get("restartCount", 0))
    kind, reason = decide_job(
        request.node_results,
        restart_count,
        settings.max_restarts_per_job,
        settings.restart_on_healthy,
        request.job.managed_by_service,
    )
    new_tasks: dict[str, str] = {}
    if request.dry_run:
        reason = f"dry run: would be {kind.value} ({reason})"
    elif kind == JobOutcomeKind.RESTARTED:
        new_tasks, problems = restart_tasks(request, ecs, tables, job.get("lockTakenFrom"))
        if problems:
            kind = JobOutcomeKind.RESTARTED if new_tasks else JobOutcomeKind.FAILED
            reason = f"{reason}; could not start {len(problems)} task(s): {listing(problems, PROBLEMS_LISTED)}"
    status = "FAILED" if kind == JobOutcomeKind.FAILED and not request.dry_run else "RUNNING"
    notification = recovery_notification(
        job_id,
        kind,
        reason,
        request.node_results,
        request.execution,
        dry_run=request.dry_run,
        failed_task=request.failure.task_arn,
        new_tasks=list(new_tasks.values()),
    )
    # The new task ARNs go to the tables, not into the output: with 8 tasks on each of 128 nodes they alone
    # would pass Step Functions' 256 KB state limit.
    outcome = JobOutcome(
        outcome=kind, reason=reason, dry_run=request.dry_run, restarted=len(new_tasks), notification=notification
    )
    tables.finish_job(
        job_id, me, status=status, outcome=outcome.dump(), new_tasks=new_tasks, now=clock.utcnow().isoformat()
    )
    if not request.dry_run:
        metrics.add_metric(
            name="JobFailed" if kind == JobOutcomeKind.FAILED else "JobRestarted", unit=MetricUnit.Count, value=1
        )
        if kind == JobOutcomeKind.RESTARTED and request.failure.stopped_at:
            # Time to recovery: from the failed task's stop to its job running again.
            down = clock.utcnow() - datetime.fromisoformat(request.failure.stopped_at)
            metrics.add_metric(name="TimeToRecovery", unit=MetricUnit.Seconds, value=down.total_seconds())
    logger.info("Job decided", job_id=job_id, outcome=kind.value, reason=reason, restarted=len(new_tasks))
    return outcome


@traced_step_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    request = JobRequest.model_validate(event)
    ecs = Ecs(settings.ecs_cluster_name)
    return decide_and_restart(request, settings, ecs, Tables.from_settings(settings)).dump()
