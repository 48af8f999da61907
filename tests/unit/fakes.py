"""In-memory stand-ins for the data layer (recovery.tables.Tables) and the AWS adapters (recovery.aws), passed to
the steps' logic functions through their parameters, so that a policy is tested in milliseconds. Each fake
keeps the conditions of the real write it stands for (the DynamoDB ConditionExpression in recovery.tables,
recovery.job_table, recovery.fleet_breaker); tests/unit/test_fakes.py runs the same sequences against both."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from recovery.models import JobStatus, NodeStatus, TaskRecoveryStatus
from recovery.storage import plain
from recovery.tables import HISTORY_PREFIX, STATE_KEY

LOCK = ("lockOwner", "lockedAt")


@dataclass
class FakeTables:
    """The three tables as dicts: tasks and jobs by key, node STATE rows by node id, history rows by node id
    (in key order, as a Query returns them), repair slots by cluster."""

    history_ttl: timedelta = timedelta(days=90)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    slots: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    _serial: itertools.count[int] = field(default_factory=itertools.count)

    # ---- JobTable ---------------------------------------------------------------------------------
    def get_task(self, task_arn: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.tasks.get(task_arn))

    def get_tasks(self, task_arns: list[str]) -> list[dict[str, Any]]:
        return [item for arn in task_arns if (item := self.get_task(arn))]

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.jobs.get(job_id))

    def job_task_items(self, job_id: str) -> list[dict[str, Any]]:
        projected = ("taskArn", "taskDefinitionArn", "restartedAs")
        return [{k: row[k] for k in projected if k in row} for row in self.tasks.values() if row.get("jobId") == job_id]

    def finish_job(
        self, job_id: str, me: str, *, status: JobStatus, outcome: dict[str, Any], new_tasks: dict[str, str], now: str
    ) -> bool:
        job = self.jobs.get(job_id, {})
        if job.get("lockOwner") != me or job.get("lastRecovery") == me:
            return False
        job |= {
            "status": status,
            "lastOutcome": outcome["outcome"],
            "lastReason": outcome["reason"],
            "lastRecovery": me,
            "lastOutcomeDetail": plain(outcome),
            "updatedAt": now,
            "tasks": sorted(new_tasks.values()),
        }
        if new_tasks:
            job["restartCount"] = job.get("restartCount", 0) + 1
        self.record_restarts(new_tasks, now)
        return True

    def record_restarts(self, new_tasks: dict[str, str], now: str) -> None:
        for old, new in new_tasks.items():
            row = self.tasks.setdefault(old, {"taskArn": old})
            row |= {"restartedAs": new, "recoveryStatus": TaskRecoveryStatus.RESTARTED, "updatedAt": now}

    def release_job_after_error(self, job_id: str, me: str, now: str, error: str) -> bool:
        job = self.jobs.get(job_id, {})
        if job.get("lockOwner") != me:
            return False
        job |= {"status": JobStatus.ERROR, "lastReason": error, "updatedAt": now}
        for key in LOCK:
            job.pop(key, None)
        return True

    def mark_task(self, task_arn: str, status: TaskRecoveryStatus, now: str, *, handled_by: str | None = None) -> bool:
        row = self.tasks.get(task_arn)
        if row is None or (handled_by and row.get("recoveryExecution") != handled_by):
            return False
        row |= {"recoveryStatus": status, "updatedAt": now}
        return True

    def jobs_locked_by(self, execution_arn: str) -> list[str]:
        return sorted(job_id for job_id, job in self.jobs.items() if job.get("lockOwner") == execution_arn)

    # ---- NodeTable --------------------------------------------------------------------------------
    def get_node(self, node_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.nodes.get(node_id))

    def lock_node(
        self, node_id: str, container_instance_arn: str, me: str, now: str, *, dead_owner: str | None = None
    ) -> tuple[bool, dict[str, Any] | None]:
        row = self.nodes.get(node_id, {})
        free = row.get("lockOwner") in {None, me} or (dead_owner is not None and row.get("lockOwner") == dead_owner)
        if not free or row.get("status") in {NodeStatus.HELD, NodeStatus.QUARANTINED}:
            return False, copy.deepcopy(row)
        self.nodes[node_id] = row | {
            "nodeId": node_id,
            "recordKey": STATE_KEY,
            "lockOwner": me,
            "lockedAt": now,
            "status": NodeStatus.CHECKING,
            "containerInstanceArn": container_instance_arn,
            "updatedAt": now,
            "reboots": row.get("reboots", []),
        }
        return True, None

    def update_node(self, node_id: str, me: str, fields: dict[str, Any], *, release: bool) -> bool:
        row = self.nodes.get(node_id, {})
        if row.get("lockOwner") != me:
            return False
        row |= plain(fields)
        if release:
            for key in LOCK:
                row.pop(key, None)
        return True

    def update_node_once(
        self, node_id: str, me: str, fields: dict[str, Any], *, marker: str
    ) -> tuple[bool, dict[str, Any] | None]:
        row = self.nodes.get(node_id)
        if row is None or row.get("lockOwner") != me or row.get(marker) == me:
            return False, copy.deepcopy(row)
        row |= plain(fields)
        return True, None

    def refund_reboot(self, node_id: str, me: str, now: str) -> bool:
        row = self.nodes.get(node_id, {})
        if row.get("lockOwner") != me or row.get("lastRebootBy") != me:
            return False
        row |= {"reboots": row.get("reboots", [])[:-1], "updatedAt": now}
        del row["lastRebootBy"]
        return True

    def add_history(self, node_id: str, kind: str, me: str, now: datetime, detail: dict[str, Any]) -> None:
        key = f"{HISTORY_PREFIX}{now.isoformat()}#{next(self._serial):08x}"
        row = {
            "nodeId": node_id,
            "recordKey": key,
            "kind": kind,
            "at": now.isoformat(),
            "detail": plain(detail),
            "expiresAt": int((now + self.history_ttl).timestamp()),
            "executionArn": me,
        }
        self.rows.setdefault(node_id, []).append(row)
        self.rows[node_id].sort(key=lambda r: r["recordKey"])

    def history(self, node_id: str, execution_arn: str | None = None) -> list[dict[str, Any]]:
        rows = self.rows.get(node_id, [])
        return copy.deepcopy([r for r in rows if execution_arn is None or r.get("executionArn") == execution_arn])

    def relabel_history(self, node_id: str, me: str, kind: str, new_kind: str, detail: dict[str, Any]) -> None:
        for row in self.rows.get(node_id, []):
            if row.get("executionArn") == me and row["kind"] == kind:
                row |= {"kind": new_kind, "detail": plain(detail)}

    def nodes_locked_by(self, execution_arn: str) -> list[dict[str, Any]]:
        return copy.deepcopy([row for _, row in sorted(self.nodes.items()) if row.get("lockOwner") == execution_arn])

    # ---- FleetBreaker -----------------------------------------------------------------------------
    def repair_slots(self, cluster: str) -> dict[str, Any]:
        return copy.deepcopy(self.slots.get(cluster, {}))

    def release_repair_slot(self, cluster: str, node_id: str, me: str) -> bool:
        held = self.slots.get(cluster, {})
        if held.get(node_id, {}).get("by") != me:
            return False
        del held[node_id]
        return True


@dataclass
class FakeEcs:
    """The ECS adapter: what was marked, drained and started, and RunTask's answer per task definition."""

    cluster: str = "gpu-training"
    under_repair: set[str] = field(default_factory=set)
    drained: list[str] = field(default_factory=list)
    started: list[dict[str, Any]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # task definition ARN -> why RunTask refuses it

    def mark_under_repair(self, container_instance_arn: str) -> None:
        self.under_repair.add(container_instance_arn)

    def clear_under_repair(self, container_instance_arn: str) -> None:
        self.under_repair.discard(container_instance_arn)

    def drain(self, container_instance_arns: list[str]) -> list[str]:
        self.drained += container_instance_arns
        return []

    def run_task(self, request: dict[str, Any]) -> tuple[str | None, str]:
        if request["taskDefinition"] in self.refuse:
            return None, self.refuse[request["taskDefinition"]]
        self.started.append(request)
        return f"arn:aws:ecs:us-east-1:123456789012:task/{self.cluster}/new{len(self.started):04d}", ""


@dataclass
class FakeStepFunctions:
    running: set[str] = field(default_factory=set)

    def is_running(self, execution_arn: str) -> bool:
        return execution_arn in self.running
