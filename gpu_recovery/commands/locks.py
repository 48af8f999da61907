"""`gpu-recovery locks`: every job and node lock and fleet-breaker slot, with whether its owner still runs;
`gpu-recovery locks release EXECUTION`: release what an execution that no longer runs still holds, as the
CleanupExecution Lambda would (for when its event was lost or it failed)."""

from __future__ import annotations

import argparse
from typing import Any

from gpu_recovery import aws_context
from gpu_recovery.aws_context import AwsContext
from gpu_recovery.cli_output import (
    FAILED,
    OK,
    CommandError,
    command,
    format_time,
    print_json,
    render_table,
    short_execution,
)
from recovery import clock
from recovery.abandon import release_everything
from recovery.aws import Ecs, StepFunctions

NAME = "locks"
GONE = "GONE"  # DescribeExecution knows no such execution (never existed, or its history expired)


def owner_status(owner: str, seen: dict[str, str]) -> str:
    """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED … of the execution holding a lock, or GONE."""
    if owner not in seen:
        seen[owner] = StepFunctions().status(owner) or GONE
    return seen[owner]


def held_locks(context: AwsContext) -> list[dict[str, Any]]:
    """One row per lock: kind (JOB, NODE, SLOT), what is locked, its owner and since when."""
    tables, cluster = context.tables, context.cluster_name
    rows = [
        {"kind": "JOB", "target": job["jobId"], "owner": job["lockOwner"], "since": job.get("lockedAt")}
        for job in tables.locked_jobs()
    ]
    rows += [
        {"kind": "NODE", "target": node["nodeId"], "owner": node["lockOwner"], "since": node.get("lockedAt")}
        for node in tables.node_states()
        if node.get("lockOwner")
    ]
    rows += [
        {"kind": "SLOT", "target": node_id, "owner": slot["by"], "until": slot.get("until")}
        for node_id, slot in sorted(tables.repair_slots(cluster).items())
    ]
    seen: dict[str, str] = {}
    for row in rows:
        row["ownerStatus"] = owner_status(str(row["owner"]), seen)
    return rows


@command(NAME)
def run(args: argparse.Namespace) -> int:
    context = AwsContext(args)
    rows = held_locks(context)
    if args.json:
        print_json(rows)
        return OK
    if not rows:
        print("no locks held")
        return OK
    print(
        render_table(
            [
                [
                    r["kind"],
                    r["target"],
                    short_execution(r["owner"]),
                    r["ownerStatus"],
                    format_time(r.get("since")) if r.get("since") else f"until {format_time(r.get('until'))}",
                ]
                for r in rows
            ],
            ["LOCK", "ON", "OWNER", "OWNER STATUS", "SINCE"],
        )
    )
    stale = sorted({r["owner"] for r in rows if r["ownerStatus"] != "RUNNING"})
    for owner in stale:
        print(f"stale: {short_execution(owner)} no longer runs: gpu-recovery locks release {owner} --reason ...")
    return OK


@command(f"{NAME} release")
def release(args: argparse.Namespace) -> int:
    context = AwsContext(args)
    status = owner_status(args.execution, {})
    if status == "RUNNING" and not args.force:
        raise CommandError(
            f"{short_execution(args.execution)} is RUNNING: stop it first, or release its locks anyway with --force",
            FAILED,
        )
    why = f"locks released by {context.who()}: {args.reason} (owner {status})"
    released = release_everything(
        args.execution,
        why,
        now=clock.utcnow(),
        cluster=context.cluster_name,
        tables=context.tables,
        ecs=Ecs(context.cluster),
    )
    if args.json:
        print_json({"jobs": released.jobs, "nodes": released.nodes, "slots": released.slots})
        return OK
    if not (released.jobs or released.nodes or released.slots):
        print(f"{short_execution(args.execution)} holds no lock: nothing to release")
        return OK
    for job in released.jobs:
        print(f"job {job}: lock released, status ERROR")
    for node in released.nodes:
        print(f"node {node}: lock released, SUSPECT and DRAINING (gpu-recovery node release {node} when it is fine)")
    for node in released.slots:
        print(f"fleet-breaker slot of {node}: given back")
    return OK


def register(commands: Any) -> None:
    parser = commands.add_parser(
        NAME,
        help="list job and node locks and fleet-breaker slots, with their owners' status; release stale ones",
        description=(
            "Every lock the workflow holds: job locks (ecs_job lockOwner), node locks (ecs_node lockOwner) and "
            "fleet-breaker repair slots, with the owning execution's status (DescribeExecution: RUNNING, "
            "FAILED, TIMED_OUT, ABORTED, …, or GONE). A lock whose owner no longer runs is stale. "
            "Exit codes: 0 ok, 1 AWS error, 2 usage error."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    aws_context.add_arguments(parser)
    parser.set_defaults(func=run)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    release_parser = actions.add_parser(
        "release",
        help="release every lock an execution still holds",
        description=(
            "Release what EXECUTION still holds, as CleanupExecution does when an execution ends badly: its job "
            "locks (job status ERROR), its nodes (SUSPECT, DRAINING, unlocked, with an ERROR history row: they "
            "may be mid-repair; `gpu-recovery node release` returns them) and its fleet-breaker slots. Refused "
            "for a RUNNING execution unless --force. Exit codes: 0 released (or nothing held), 1 refused / AWS "
            "error, 2 usage error."
        ),
    )
    release_parser.add_argument("execution", metavar="EXECUTION", help="execution ARN holding the locks")
    release_parser.add_argument("--reason", required=True, help="why (recorded on the job and the nodes)")
    release_parser.add_argument("--force", action="store_true", help="release even if the execution is running")
    release_parser.add_argument("--json", action="store_true", help="print JSON")
    aws_context.add_arguments(release_parser)
    release_parser.set_defaults(func=release)
