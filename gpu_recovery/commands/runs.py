"""`gpu-recovery runs`: recent recovery executions, one line each."""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Key

from gpu_recovery import aws_context
from gpu_recovery.aws_context import AwsContext
from gpu_recovery.cli_arguments import instance_id, parse_duration, positive_int
from gpu_recovery.cli_output import (
    OK,
    command,
    format_duration,
    format_time,
    print_json,
    render_table,
    to_datetime,
)
from gpu_recovery.executions import summarize, task_arn_of
from gpu_recovery.history import parse_json
from recovery.schema import BY_JOB_INDEX

NAME = "runs"
STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")
DESCRIBE_WORKERS = 8


def job_executions(context: AwsContext, job_id: str) -> set[str]:
    """Executions that handled a task of the job: one query of the task table's byJob index."""
    table, arns = context.tables.task, set()
    kwargs: dict[str, Any] = {"IndexName": BY_JOB_INDEX, "KeyConditionExpression": Key("jobId").eq(job_id)}
    while True:
        page = table.query(**kwargs)
        for item in page["Items"]:
            arns |= {str(item[k]) for k in ("recoveryExecution", "joinedRecovery") if item.get(k)}
        if "LastEvaluatedKey" not in page:
            return arns
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def node_executions(context: AwsContext, node_id: str) -> set[str]:
    """Executions that checked or acted on the node: its history rows (one query)."""
    return {str(row["executionArn"]) for row in context.tables.history(node_id) if row.get("executionArn")}


def listed(context: AwsContext, status: str | None, since: datetime | None) -> list[dict[str, Any]]:
    """ListExecutions, newest first, stopping at the first one older than ``since``."""
    kwargs: dict[str, Any] = {"stateMachineArn": context.state_machine_arn, "PaginationConfig": {"PageSize": 100}}
    if status:
        kwargs["statusFilter"] = status
    found: list[dict[str, Any]] = []
    for page in context.sfn.get_paginator("list_executions").paginate(**kwargs):
        for execution in page["executions"]:
            if since and to_datetime(execution["startDate"]) < since:  # type: ignore[operator]
                return found
            found.append(execution)
    return found


def summaries(context: AwsContext, executions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """DescribeExecution for each (in parallel), and the failed task's row when the output does not say."""

    def one(execution: dict[str, Any]) -> dict[str, Any]:
        description = context.sfn.describe_execution(executionArn=execution["executionArn"])
        row = None
        if not description.get("output"):
            task_arn = task_arn_of(parse_json(description.get("input")))
            row = context.tables.get_task(task_arn) if task_arn else None
        return summarize(description, row)

    with ThreadPoolExecutor(max_workers=DESCRIBE_WORKERS) as pool:
        return list(pool.map(one, executions))


def nodes_cell(summary: dict[str, Any]) -> str:
    outcomes = summary["nodeOutcomes"]
    return ", ".join(f"{n} {outcomes[n]}" if outcomes.get(n) else n for n in summary["nodes"]) or "-"


@command(NAME)
def run(args: argparse.Namespace) -> int:
    context = AwsContext(args)
    since = datetime.now(UTC) - args.since if args.since else None
    executions = listed(context, args.status, since)
    if args.job:
        wanted = job_executions(context, args.job)
        executions = [e for e in executions if e["executionArn"] in wanted]
    if args.node:
        wanted = node_executions(context, args.node)
        executions = [e for e in executions if e["executionArn"] in wanted]
    rows = summaries(context, executions[: args.limit])
    # Most executions are events the workflow ignored or saw twice; they are noise when looking for recoveries.
    hidden = 0 if args.all else sum(r["ignored"] for r in rows)
    rows = rows if args.all else [r for r in rows if not r["ignored"]]
    if args.json:
        print_json(rows)
        return OK
    if not rows:
        print("no recovery executions match" + (f" ({hidden} ignored or duplicate not shown: --all)" if hidden else ""))
        return OK
    print(
        render_table(
            [
                [
                    format_time(r["startDate"]),
                    r["status"],
                    r["job"],
                    nodes_cell(r),
                    r["outcome"],
                    format_duration(r["durationSeconds"]),
                    r["name"],
                ]
                for r in rows
            ],
            ["START", "STATUS", "JOB", "NODES", "OUTCOME", "DURATION", "EXECUTION"],
        )
    )
    if hidden:
        print(f"({hidden} ignored or duplicate not shown: --all)")
    if len(executions) > args.limit:
        print(f"({len(executions) - args.limit} older not shown: --limit)")
    return OK


def register(commands: Any) -> None:
    parser = commands.add_parser(
        NAME,
        help="list recent recovery executions",
        description=(
            "Recent executions of the recovery state machine, newest first: start time, status, job, node(s) "
            "(with their outcome once known), outcome, duration and the execution name (for `show`). "
            "--job reads the task table's byJob index, --node the node's history rows: executions that "
            "checked or acted on the node. Exit codes: 0 ok, 1 AWS error, 2 usage error."
        ),
    )
    parser.add_argument("--status", choices=STATUSES, type=str.upper, help="only executions with this status")
    parser.add_argument("--job", metavar="JOB_ID", help="only executions that handled this job")
    parser.add_argument(
        "--node", metavar="INSTANCE_ID", type=instance_id, help="only executions that checked or acted on this node"
    )
    parser.add_argument(
        "--since", type=parse_duration, metavar="DURATION", help="only executions started within, e.g. 30m, 6h, 7d"
    )
    parser.add_argument("--limit", type=positive_int, default=50, help="look at the newest this many (default 50)")
    parser.add_argument(
        "--all", action="store_true", help="also list executions that ignored their event or found it a duplicate"
    )
    aws_context.add_arguments(parser)
    parser.set_defaults(func=run)
