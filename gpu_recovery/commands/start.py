"""`gpu-recovery start`: start a recovery by hand for one task (the manual input form), optionally follow it."""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from gpu_recovery import aws_context
from gpu_recovery.aws_context import AwsContext
from gpu_recovery.cli_output import FAILED, OK, USAGE, CommandError, command, format_duration, print_json, truncate
from gpu_recovery.executions import FINAL_STATUSES, execution_name
from gpu_recovery.history import new_events, read
from recovery.ecs_task import ManualRequest
from recovery.notify import console_url

NAME = "start"
PROGRESS_EVERY_SECONDS = 30.0


def task_arn_pattern() -> Any:
    # The ClassifyFailure step's own check: what it would reject as InvalidInput, the CLI rejects up front.
    from classify_failure import TASK_ARN  # noqa: PLC0415 - loads the step module (and Powertools) only here

    return TASK_ARN


def task_arn_parts(task_arn: str) -> tuple[str, str]:
    """The region and cluster name of a task ARN; a usage error when ClassifyFailure would reject it."""
    if not task_arn_pattern().match(task_arn):
        raise CommandError(
            f"{task_arn!r} is not an ECS task ARN (arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/TASK_ID)", USAGE
        )
    return task_arn.split(":")[3], task_arn.split(":task/", 1)[1].split("/", 1)[0]


def check_task(context: AwsContext, task_arn: str) -> dict[str, Any]:
    """The task as DescribeTasks returns it from the configured cluster; a usage error when the ARN names
    another cluster, a failure when the cluster does not know the task."""
    _, arn_cluster = task_arn_parts(task_arn)
    if arn_cluster != context.cluster_name:
        raise CommandError(
            f"task {task_arn} belongs to cluster {arn_cluster!r}; this deployment recovers cluster "
            f"{context.cluster_name!r} (give --cluster / GPU_RECOVERY_CLUSTER, or --stack-name, for another one)",
            USAGE,
        )
    response = context.ecs.describe_tasks(cluster=context.cluster, tasks=[task_arn])
    tasks = [t for t in response.get("tasks", []) if t.get("taskArn") == task_arn]
    if not tasks:
        reasons = ", ".join(f.get("reason", "?") for f in response.get("failures", [])) or "MISSING"
        raise CommandError(f"task {task_arn} not found in cluster {context.cluster_name} ({reasons})", FAILED)
    return dict(tasks[0])


def new_execution_name(task_arn: str, dry_run: bool, now: datetime | None = None) -> str:
    """`manual[-dryrun]-<task id>-<UTC time>-<4 hex>`: readable, sortable, unique, within Step Functions' rules."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    task_id = task_arn.rsplit("/", 1)[-1][:32]
    return execution_name("manual-dryrun" if dry_run else "manual", task_id, stamp, secrets.token_hex(2))


def follow(
    context: AwsContext, execution_arn: str, poll_seconds: float, timeout: float | None, out: TextIO
) -> dict[str, Any]:
    """Print each state to ``out`` as it is entered until the execution ends; a progress line on stderr while
    a state takes long (a reboot, a DCGM check). Returns the final DescribeExecution."""
    printed: set[int] = set()
    deadline = time.monotonic() + timeout if timeout else None
    last_news = time.monotonic()
    labels: dict[Any, str] = {}
    events: list[dict[str, Any]] = []
    while True:
        description = context.sfn.describe_execution(executionArn=execution_arn)
        events += new_events(context.sfn, execution_arn, after=int(events[-1]["id"]) if events else 0)
        walked = read(events)
        labels |= walked.labels()
        started = walked.started
        current = None
        for index, visit in enumerate(walked.visits):
            current = visit
            if index in printed:
                continue
            printed.add(index)
            last_news = time.monotonic()
            offset = (visit.entered - started).total_seconds() if started else 0.0
            where = f"  [{labels.get(visit.scope, '')}]" if visit.scope else ""
            print(f"  +{format_duration(offset):<7} {visit.name}{where}", file=out, flush=True)
        if description["status"] in FINAL_STATUSES:
            return dict(description)
        now = time.monotonic()
        if deadline and now > deadline:
            raise CommandError(f"gave up waiting after {timeout:g}s; the execution is still running", FAILED)
        if now - last_news >= PROGRESS_EVERY_SECONDS:
            state = current.name if current else "starting"
            print(f"  ... still {description['status']} in {state}", file=sys.stderr, flush=True)
            last_news = now
        time.sleep(poll_seconds)


@command(NAME)
def run(args: argparse.Namespace) -> int:
    if not args.reason.strip():
        raise CommandError("--reason must not be empty", USAGE)
    # Everything on the command line is checked before the first AWS call; the task's region is the ARN's.
    region, _ = task_arn_parts(args.task_arn)
    if getattr(args, "region", None) and args.region != region:
        raise CommandError(f"--region {args.region} but the task ARN is in {region}", USAGE)
    context = AwsContext(args, region=region)
    state_machine = context.state_machine_arn
    task = check_task(context, args.task_arn)
    if task.get("lastStatus") != "STOPPED" and not (args.force or args.dry_run):
        # A recovery stops every task of the job to free the GPUs for the check: never by surprise.
        raise CommandError(
            f"task {task['taskArn']} is {task.get('lastStatus')}: a recovery stops every task of its job; "
            "pass --force to recover it anyway (or --dry-run, which stops nothing)",
            FAILED,
        )
    request = ManualRequest(task_arn=task["taskArn"], reason=args.reason, dry_run=args.dry_run).dump()
    name = new_execution_name(task["taskArn"], args.dry_run)
    started = context.sfn.start_execution(stateMachineArn=state_machine, name=name, input=json.dumps(request))
    arn = str(started["executionArn"])
    document: dict[str, Any] = {"executionArn": arn, "name": name, "consoleUrl": console_url(arn), "input": request}
    # With --json, stdout carries exactly one JSON document: what people read goes to stderr.
    out = sys.stderr if args.json else sys.stdout
    print(f"Started {'a dry-run ' if args.dry_run else ''}recovery for task {task['taskArn']}", file=out)
    print(f"  execution  {arn}", file=out)
    print(f"  console    {console_url(arn)}", file=out, flush=True)
    if args.wait:
        final = follow(context, arn, args.poll_seconds, args.timeout, out)
        seconds = (final["stopDate"] - final["startDate"]).total_seconds() if final.get("stopDate") else None
        line = f"{final['status']} after {format_duration(seconds)}"
        if final.get("error"):
            line += f": {final['error']}: {truncate(final.get('cause', ''), 300)}"
        print(line, file=out)
        document |= {"status": final["status"], "error": final.get("error"), "cause": final.get("cause")}
    if args.json:
        print_json(document)
    return OK if document.get("status", "SUCCEEDED") == "SUCCEEDED" else FAILED


def register(commands: Any) -> None:
    parser = commands.add_parser(
        NAME,
        help="start a recovery by hand for one ECS task",
        description=(
            "Check that the task exists in the recovered cluster (DescribeTasks), then start an execution with the "
            'manual input {"taskArn", "reason", "dryRun"} and a readable unique name '
            "(manual[-dryrun]-<task id>-<UTC time>-<hex>). Prints the execution ARN and its console URL. "
            "A task that is not STOPPED is refused without --force (a recovery stops every task of its job). "
            "Exit codes: 0 started (with --wait: SUCCEEDED), 1 task not found / still running / execution did not "
            "succeed, 2 usage error (malformed ARN, task of another cluster, deployment not found)."
        ),
    )
    parser.add_argument("task_arn", metavar="TASK_ARN", help="arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/TASK_ID")
    parser.add_argument("--reason", default="manual request", help="why (recorded in the execution input)")
    parser.add_argument("--dry-run", action="store_true", help="same decisions and notifications, no destructive call")
    parser.add_argument("--force", action="store_true", help="recover a task that is still running (stops its job)")
    parser.add_argument("--wait", action="store_true", help="follow the execution to its end, printing each state")
    parser.add_argument("--poll-seconds", type=float, default=2.0, help="with --wait: seconds between polls")
    parser.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds (exit 1)")
    aws_context.add_arguments(parser)
    parser.set_defaults(func=run)
