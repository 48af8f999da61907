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
from recovery.models import (
    CamelModel,
    ExecutionContext,
    Failure,
    JobOutcomeKind,
    JobPlan,
    JobStatus,
    NodeResult,
    Notification,
)
from recovery.notify import listing, recovery_notification
from recovery.observability import logger, metrics, traced_step_handler
from recovery.policy import decide_job
from recovery.relaunch import run_task_request
from recovery.settings import Settings, get_settings
from recovery.tables import Tables

RUN_TASK_CLIENT_TOKEN_LENGTH = 64  # RunTask's clientToken limit
PROBLEMS_LISTED = 5  # tasks that could not be started, named in the outcome's reason (the rest counted)


class JobOutcome(CamelModel):
    outcome: JobOutcomeKind
    reason: str
    dry_run: bool
    restarted: int = 0  # tasks started again; which ones: the task table's restartedAs
    notification: Notification
    # The job row's join counter when its tasks were read: ReleaseJob releases only if it is unchanged.
    joins_seen: int = 0
    late_join_rounds: int = 0  # RestartLateJoiners rounds so far (the definition bounds them)


class JobRequest(CamelModel):
    """What the state machine sends RestartJob (and RestartLateJoiners): the job, its nodes' results."""

    job: JobPlan
    failure: Failure
    node_results: list[NodeResult]
    dry_run: bool
    execution: ExecutionContext
    outcome: JobOutcome | None = None  # RestartLateJoiners: the job's outcome so far


def client_token(execution_arn: str, task_arn: str) -> str:
    return hashlib.sha256(f"{execution_arn}|{task_arn}".encode()).hexdigest()[:RUN_TASK_CLIENT_TOKEN_LENGTH]


def restart_tasks(task_arns: list[str], me: str, ecs: Ecs, tables: Tables) -> tuple[dict[str, str], list[str]]:
    """Start these tasks again as they were launched. A task already restarted (by this step before a retry) is
    not started twice: it answers what it was restarted as."""
    started: dict[str, str] = {}
    problems: list[str] = []
    for record in tables.get_tasks(task_arns):
        if record.get("restartedAs"):
            started[record["taskArn"]] = record["restartedAs"]
            continue
        run_task, problem = run_task_request(record, ecs.cluster, client_token(me, record["taskArn"]))
        new_arn, problem = ecs.run_task(run_task) if run_task else (None, problem)
        if new_arn:
            started[record["taskArn"]] = new_arn
        else:
            problems.append(f"{record['taskArn'].rsplit('/', 1)[-1]}: {problem}")
    return started, problems


def job_task_arns(request: JobRequest, tables: Tables) -> list[str]:
    """The ARNs of the job's tasks: the state carries task ids (a smaller state); ClassifyFailure recorded every
    one of them with its ARN."""
    arns = {
        arn.rsplit("/", 1)[-1]: arn for arn in (row["taskArn"] for row in tables.job_task_items(request.job.job_id))
    }
    return [arns[i] for i in request.job.tasks if i in arns]


def joined(job: dict[str, Any]) -> list[str]:
    """Tasks that joined the job's recovery (JoinExistingRecovery), this execution's or, after a takeover, the dead
    owner's: the job row keeps them until the lock is released."""
    return list(dict.fromkeys(job.get("joinedTasks", [])))


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
        settings.MAX_RESTARTS_PER_JOB,
        settings.RESTART_ON_HEALTHY,
        request.job.managed_by_service,
    )
    new_tasks: dict[str, str] = {}
    if request.dry_run:
        reason = f"dry run: would be {kind.value} ({reason})"
    elif kind == JobOutcomeKind.RESTARTED:
        task_arns = list(dict.fromkeys([*job_task_arns(request, tables), *joined(job)]))
        new_tasks, problems = restart_tasks(task_arns, me, ecs, tables)
        if problems:
            kind = JobOutcomeKind.RESTARTED if new_tasks else JobOutcomeKind.FAILED
            reason = f"{reason}; could not start {len(problems)} task(s): {listing(problems, PROBLEMS_LISTED)}"
    status = JobStatus.FAILED if kind == JobOutcomeKind.FAILED and not request.dry_run else JobStatus.RUNNING
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
        outcome=kind,
        reason=reason,
        dry_run=request.dry_run,
        restarted=len(new_tasks),
        notification=notification,
        joins_seen=int(job.get("joins", 0)),
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


def restart_late_joiners(request: JobRequest, previous: JobOutcome, ecs: Ecs, tables: Tables) -> JobOutcome:
    """RestartLateJoiners: tasks joined after the job was decided (ReleaseJob saw a newer join counter). They share
    the job's outcome: restarted with it when it was restarted, else only named. A joined task already restarted
    (the task table's restartedAs) was handled by an earlier round."""
    job_id, me = request.job.job_id, request.execution.id
    job = tables.get_job(job_id) or {}
    known = set(job_task_arns(request, tables))
    candidates = [arn for arn in joined(job) if arn not in known]
    late = [row["taskArn"] for row in tables.get_tasks(candidates) if not row.get("restartedAs")]
    new_tasks: dict[str, str] = {}
    reason = f"{len(late)} task(s) joined after the job was decided ({previous.outcome.value})"
    if late and previous.outcome == JobOutcomeKind.RESTARTED and not request.dry_run:
        new_tasks, problems = restart_tasks(late, me, ecs, tables)
        tables.record_restarts(new_tasks, clock.utcnow().isoformat())
        reason += f": restarted {len(new_tasks)}" + (
            f"; could not start {listing(problems, PROBLEMS_LISTED)}" if problems else ""
        )
    notification = recovery_notification(
        job_id,
        previous.outcome,
        reason,
        request.node_results,
        request.execution,
        dry_run=request.dry_run,
        failed_task=listing(late, PROBLEMS_LISTED) or request.failure.task_arn,
        new_tasks=list(new_tasks.values()),
    )
    logger.info("Late joiners", job_id=job_id, late=len(late), restarted=len(new_tasks))
    return previous.model_copy(
        update={
            "restarted": previous.restarted + len(new_tasks),
            "notification": notification,
            "joins_seen": int(job.get("joins", 0)),
            "late_join_rounds": previous.late_join_rounds + 1,
        }
    )


@traced_step_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    request = JobRequest.model_validate(event)
    ecs = Ecs(settings.ECS_CLUSTER_NAME)
    tables = Tables.from_settings(settings)
    if request.outcome:
        return restart_late_joiners(request, request.outcome, ecs, tables).dump()
    return decide_and_restart(request, settings, ecs, tables).dump()
