"""`gpu-recovery nodes`: every GPU node's recovery state (the ecs_node STATE rows)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from gpu_recovery import aws_context
from gpu_recovery.aws_context import AwsContext
from gpu_recovery.cli_output import OK, command, format_time, print_json, render_table, short_execution
from recovery.models import NodeStatus
from recovery.policy import reboots_in_window

NAME = "nodes"


def verdict_cell(row: dict[str, Any]) -> str:
    verdict = row.get("lastVerdict") or {}
    if not verdict:
        return "-"
    return f"{verdict.get('status')}/{verdict.get('action')}"


@command(NAME)
def run(args: argparse.Namespace) -> int:
    context = AwsContext(args)
    rows = context.tables.node_states(args.status)
    window = int(context.setting("REBOOT_WINDOW_HOURS"))
    now = datetime.now(UTC)
    for row in rows:
        row["rebootsInWindow"] = reboots_in_window(row.get("reboots", []), now, window)
    if args.json:
        print_json(rows)
        return OK
    if not rows:
        print("no nodes recorded" + (f" with status {args.status}" if args.status else ""))
        return OK
    print(
        render_table(
            [
                [
                    r["nodeId"],
                    r.get("status"),
                    verdict_cell(r),
                    f"{r['rebootsInWindow']}",
                    short_execution(r.get("lockOwner")) if r.get("lockOwner") else "-",
                    format_time(r.get("updatedAt")),
                    r.get("reason", ""),
                ]
                for r in rows
            ],
            ["NODE", "STATUS", "LAST VERDICT", f"REBOOTS/{window}H", "LOCK OWNER", "UPDATED", "REASON"],
        )
    )
    return OK


def register(commands: Any) -> None:
    parser = commands.add_parser(
        NAME,
        help="list GPU nodes: status, last verdict, reboots in the window, lock owner",
        description=(
            "The ecs_node STATE row of every node the workflow has seen: status, last DCGM verdict, reboots "
            "within REBOOT_WINDOW_HOURS (the deployed value), the execution holding its lock, last update and "
            "reason. Exit codes: 0 ok, 1 AWS error, 2 usage error."
        ),
    )
    parser.add_argument("--status", choices=list(NodeStatus), type=str.upper, help="only nodes with this status")
    aws_context.add_arguments(parser)
    parser.set_defaults(func=run)
