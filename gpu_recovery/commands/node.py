"""`gpu-recovery node history|release|quarantine INSTANCE`: one node's audit trail, and the human actions on it.
Both actions go through recovery.tables (conditional on the row being as read) and add a history row saying
who (STS caller identity, else $USER) and why."""

from __future__ import annotations

import argparse
from typing import Any

from gpu_recovery import aws_context
from gpu_recovery.aws_context import AwsContext
from gpu_recovery.cli_arguments import instance_id
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
from recovery.aws import StepFunctions
from recovery.models import NodeAction, NodeOutcome, NodeStatus
from recovery.relaunch import UNDER_REPAIR_ATTRIBUTE

NAME = "node"
DESCRIBE_BATCH = 100


# ---- shared -------------------------------------------------------------------------------------------
def known_state(context: AwsContext, node_id: str) -> dict[str, Any] | None:
    return context.tables.get_node(node_id)


def container_instance(context: AwsContext, node_id: str, recorded: str | None) -> dict[str, Any] | None:
    """The node's container instance in the cluster (status ACTIVE / DRAINING), or None if not registered."""
    ecs, cluster = context.ecs, context.cluster
    arns = [recorded] if recorded else []
    if not arns:
        for page in ecs.get_paginator("list_container_instances").paginate(cluster=cluster):
            arns += page["containerInstanceArns"]
    for start in range(0, len(arns), DESCRIBE_BATCH):
        found = ecs.describe_container_instances(
            cluster=cluster, containerInstances=arns[start : start + DESCRIBE_BATCH]
        )
        for ci in found["containerInstances"]:
            if ci.get("ec2InstanceId") == node_id:
                return dict(ci)
    return None


def check_lock(node_id: str, state: dict[str, Any] | None, force: bool) -> str | None:
    owner = (state or {}).get("lockOwner")
    if owner and not force and StepFunctions().is_running(str(owner)):
        raise CommandError(
            f"node {node_id} is being repaired by {short_execution(owner)} (RUNNING): wait for it, "
            "stop it, or take the node anyway with --force",
            FAILED,
        )
    return str(owner) if owner else None


def set_ecs_state(context: AwsContext, ci: dict[str, Any], status: str) -> None:
    if ci.get("status") == status:
        return
    response = context.ecs.update_container_instances_state(
        cluster=context.cluster, containerInstances=[ci["containerInstanceArn"]], status=status
    )
    if response.get("failures"):
        reasons = ", ".join(f.get("reason", "?") for f in response["failures"])
        raise CommandError(f"recorded, but ECS did not set the container instance {status}: {reasons}", FAILED)


# ---- history --------------------------------------------------------------------------------------------
def detail_cell(row: dict[str, Any]) -> str:
    detail = row.get("detail") or {}
    verdict = detail.get("verdict") or {}
    parts = []
    if verdict:
        parts.append(
            f"{detail.get('phase', '')} {verdict.get('status')}/{verdict.get('action')} -> {detail.get('next')}"
        )
    if detail.get("outcome"):
        parts.append(str(detail["outcome"]))
    if detail.get("reason"):
        parts.append(str(detail["reason"]))
    return ": ".join(p.strip() for p in parts if p)


@command(f"{NAME} history")
def history(args: argparse.Namespace) -> int:
    context = AwsContext(args)
    state = known_state(context, args.instance)
    rows = context.tables.history(args.instance)
    if state is None and not rows:
        raise CommandError(f"unknown node {args.instance}: nothing recorded in {context.table_names['node']}", FAILED)
    rows = rows[-args.limit :] if args.limit else rows
    if args.json:
        print_json({"state": state, "history": rows})
        return OK
    if state:
        print(f"{args.instance}: {state.get('status')} — {state.get('reason', '')}")
    print(
        render_table(
            [
                [
                    format_time(r.get("at")),
                    r.get("kind"),
                    r.get("by") or short_execution(r.get("executionArn")),
                    detail_cell(r),
                ]
                for r in rows
            ],
            ["AT", "KIND", "BY", "DETAIL"],
        )
    )
    return OK


# ---- release / quarantine -------------------------------------------------------------------------------
def done(args: argparse.Namespace, node_id: str, lines: list[str]) -> int:
    """What a node action did: a line per change for people, or with --json one document."""
    if args.json:
        print_json({"nodeId": node_id, "action": args.action, "done": lines})
    else:
        print("\n".join(lines))
    return OK


@command(f"{NAME} release")
def release(args: argparse.Namespace) -> int:
    context = AwsContext(args)
    node_id = args.instance
    state = known_state(context, node_id)
    if state is None:
        raise CommandError(f"unknown node {node_id}: no state recorded in {context.table_names['node']}", FAILED)
    owner = check_lock(node_id, state, args.force)
    ci = None if args.keep_draining else container_instance(context, node_id, state.get("containerInstanceArn"))
    if not args.keep_draining and ci is None:
        raise CommandError(
            f"node {node_id} is not a container instance of {context.cluster_name}: use --keep-draining "
            "to only clear its recorded state",
            FAILED,
        )
    marked = ci is not None and any(a.get("name") == UNDER_REPAIR_ATTRIBUTE for a in ci.get("attributes", []))
    table_clean = state.get("status") == NodeStatus.HEALTHY and not owner and not args.reset_reboots
    if table_clean and not marked and (ci is None or ci.get("status") == "ACTIVE"):
        return done(
            args, node_id, [f"node {node_id} is HEALTHY, unlocked{' and ACTIVE' if ci else ''}: nothing to release"]
        )
    said: list[str] = []
    who, now = context.who(), clock.utcnow()
    if not table_clean:
        fields: dict[str, Any] = {
            "status": NodeStatus.HEALTHY,
            "lastOutcome": NodeOutcome.HEALTHY,
            "reason": f"released by {who}: {args.reason}",
            "updatedAt": now.isoformat(),
        }
        if args.reset_reboots:
            fields["reboots"] = []
        if not context.tables.set_node_by_operator(node_id, fields, seen=state, remove_lock=bool(owner)):
            raise CommandError(f"node {node_id} changed while releasing it (a recovery took it?): look again", FAILED)
        detail = {"outcome": NodeOutcome.HEALTHY, "reason": args.reason, "previousStatus": state.get("status")}
        if owner:
            detail["clearedLock"] = owner
        if args.reset_reboots:
            detail["resetReboots"] = len(state.get("reboots", []))
        context.tables.add_operator_history(node_id, NodeAction.RELEASE, who, now, detail)
        said.append(
            f"node {node_id}: {state.get('status')} -> HEALTHY"
            + (f", lock of {short_execution(owner)} cleared" if owner else "")
        )
    if marked and ci is not None:
        # Restarts may land on it again (recovery/relaunch.py); deleted by name and target (DeleteAttributes).
        attribute = {"name": UNDER_REPAIR_ATTRIBUTE, "targetId": ci["containerInstanceArn"]}
        context.ecs.delete_attributes(cluster=context.cluster, attributes=[attribute])
        said.append(f"attribute {UNDER_REPAIR_ATTRIBUTE} removed")
    if ci is not None:
        set_ecs_state(context, ci, "ACTIVE")
        said.append(f"container instance {ci['containerInstanceArn'].rsplit('/', 1)[-1]}: {ci.get('status')} -> ACTIVE")
    return done(args, node_id, said)


@command(f"{NAME} quarantine")
def quarantine(args: argparse.Namespace) -> int:
    context = AwsContext(args)
    node_id = args.instance
    state = known_state(context, node_id)
    ci = container_instance(context, node_id, (state or {}).get("containerInstanceArn"))
    if state is None and ci is None:
        raise CommandError(
            f"unknown node {node_id}: not recorded in {context.table_names['node']} and not a container "
            f"instance of {context.cluster_name}",
            FAILED,
        )
    if state and state.get("status") == NodeStatus.QUARANTINED:
        return done(args, node_id, [f"node {node_id} is already QUARANTINED: {state.get('reason', '')}"])
    owner = check_lock(node_id, state, args.force)
    who, now = context.who(), clock.utcnow()
    fields: dict[str, Any] = {
        "status": NodeStatus.QUARANTINED,
        "lastOutcome": NodeOutcome.QUARANTINED,
        "reason": f"quarantined by {who}: {args.reason}",
        "updatedAt": now.isoformat(),
    }
    if state is None:
        fields |= {"reboots": [], **({"containerInstanceArn": ci["containerInstanceArn"]} if ci else {})}
    if not context.tables.set_node_by_operator(node_id, fields, seen=state, remove_lock=bool(owner)):
        raise CommandError(f"node {node_id} changed while quarantining it (a recovery took it?): look again", FAILED)
    detail = {"outcome": NodeOutcome.QUARANTINED, "reason": args.reason, "previousStatus": (state or {}).get("status")}
    if owner:
        detail["clearedLock"] = owner
    context.tables.add_operator_history(
        node_id, NodeAction.QUARANTINE, who, now, {k: v for k, v in detail.items() if v}
    )
    said = [f"node {node_id}: {(state or {}).get('status', 'unrecorded')} -> QUARANTINED"]
    if ci is not None:
        set_ecs_state(context, ci, "DRAINING")
        said.append(
            f"container instance {ci['containerInstanceArn'].rsplit('/', 1)[-1]}: {ci.get('status')} -> DRAINING"
        )
    else:
        said.append(f"(not a container instance of {context.cluster_name}: nothing to drain)")
    return done(args, node_id, said)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        NAME,
        help="one node: history, release, quarantine",
        description="One GPU node (EC2 instance id): its audit trail, and the actions a human takes on it.",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    history_parser = actions.add_parser(
        "history",
        help="the node's audit trail (diagnoses, reboots, releases, quarantines, errors)",
        description="The node's STATE and its history rows, oldest first. Exit codes: 0 ok, 1 unknown node, "
        "2 usage error.",
    )
    history_parser.add_argument("instance", metavar="INSTANCE", type=instance_id, help="EC2 instance id, e.g. i-0abc…")
    history_parser.add_argument("--limit", type=int, default=0, help="only the last N rows")
    aws_context.add_arguments(history_parser)
    history_parser.set_defaults(func=history)

    release_parser = actions.add_parser(
        "release",
        help="make a node schedulable again after a human fixed it",
        description=(
            "Clear a QUARANTINED / SUSPECT / UNHEALTHY status or a stale lock (its execution is no longer "
            "running) after a human fixed the node: status HEALTHY, lock removed, a RELEASE history row with who "
            "and why. Also sets the ECS container instance ACTIVE again, so tasks are placed on it: pass "
            "--keep-draining to leave it DRAINING. A lock held by a RUNNING execution is refused unless --force. "
            "Exit codes: 0 released (or nothing to release), 1 unknown node / refused / ECS error, 2 usage error."
        ),
    )
    release_parser.add_argument("instance", metavar="INSTANCE", type=instance_id, help="EC2 instance id")
    release_parser.add_argument("--reason", required=True, help="what was fixed (recorded in history)")
    release_parser.add_argument("--keep-draining", action="store_true", help="do not set the container instance ACTIVE")
    release_parser.add_argument("--reset-reboots", action="store_true", help="also forget its counted reboots")
    release_parser.add_argument("--force", action="store_true", help="clear a lock even if its execution is running")
    aws_context.add_arguments(release_parser)
    release_parser.set_defaults(func=release)

    quarantine_parser = actions.add_parser(
        "quarantine",
        help="take a node out of service",
        description=(
            "Status QUARANTINED (the workflow then never checks or reboots it: LockNode answers QUARANTINED), "
            "container instance DRAINING, and a QUARANTINE history row with who and why. A node the workflow "
            "has not seen yet is accepted if it is a container instance of the cluster. A lock held by a RUNNING "
            "execution is refused unless --force. Exit codes: 0 quarantined (or already), 1 unknown node / "
            "refused / ECS error, 2 usage error."
        ),
    )
    quarantine_parser.add_argument("instance", metavar="INSTANCE", type=instance_id, help="EC2 instance id")
    quarantine_parser.add_argument("--reason", required=True, help="why (recorded in history)")
    quarantine_parser.add_argument("--force", action="store_true", help="take the lock of a running execution")
    aws_context.add_arguments(quarantine_parser)
    quarantine_parser.set_defaults(func=quarantine)
