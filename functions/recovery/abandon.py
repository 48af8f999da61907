"""What an execution that cannot finish leaves behind, put right: used by HandleError (the execution is failing)
and by CleanupExecution (it already ended FAILED, TIMED_OUT or ABORTED without cleaning up)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from recovery.aws import Ecs
from recovery.models import NodeOutcome, NodeStatus
from recovery.tables import Tables


def suspend_nodes(
    nodes: Iterable[dict[str, Any]], me: str, why: str, *, now: datetime, cluster: str, tables: Tables, ecs: Ecs
) -> list[str]:
    """Every node this execution still holds becomes SUSPECT, DRAINING and unlocked, with an ERROR history row:
    it may be mid-reboot, drained or unverified, so it takes no work until a human looks (`gpu-recovery node
    release`). Its fleet-breaker slot goes back. `nodes`: {ec2InstanceId, containerInstanceArn}. Returns the
    node ids this execution held."""
    suspended = []
    for node in nodes:
        node_id = str(node["ec2InstanceId"])
        fields = {
            "status": NodeStatus.SUSPECT,
            "lastOutcome": NodeOutcome.SUSPECT,
            "reason": why,
            "updatedAt": now.isoformat(),
        }
        if tables.update_node(node_id, me, fields, release=True):
            tables.add_history(node_id, "ERROR", me, now, {"reason": why})
            if node.get("containerInstanceArn"):
                ecs.drain([str(node["containerInstanceArn"])])
            suspended.append(node_id)
        tables.release_repair_slot(cluster, node_id, me)
    return suspended


@dataclass(frozen=True)
class Released:
    jobs: list[str]
    nodes: list[str]
    slots: list[str]


def release_everything(me: str, why: str, *, now: datetime, cluster: str, tables: Tables, ecs: Ecs) -> Released:
    """Everything execution `me` still holds, found by scanning (it may have died before it knew its job):
    job locks removed (status ERROR, `why` as the reason), nodes suspended (see suspend_nodes), repair slots
    given back. Conditional on `me` throughout, so running it twice, or on an execution that cleaned up after
    itself, changes nothing."""
    jobs, nodes = tables.jobs_locked_by(me), tables.nodes_locked_by(me)
    released_jobs = [job for job in jobs if tables.release_job_after_error(job, me, now.isoformat(), why)]
    released_nodes = suspend_nodes(
        [{"ec2InstanceId": n["nodeId"], "containerInstanceArn": n.get("containerInstanceArn")} for n in nodes],
        me,
        f"{why} (mid-way through its repair)",
        now=now,
        cluster=cluster,
        tables=tables,
        ecs=ecs,
    )
    released_slots = [
        node_id
        for node_id, slot in tables.repair_slots(cluster).items()
        if slot.get("by") == me and tables.release_repair_slot(cluster, node_id, me)
    ]
    return Released(released_jobs, released_nodes, released_slots)
