"""The data layer: one class per table concern, each over the same injectable DynamoDB resource
(recovery.storage), and Tables, all three for the steps and commands that use several.
- recovery.job_table.JobTable: the task and job tables (ecs_task, ecs_job);
- NodeTable, here: the node table's STATE rows and history (ecs_node);
- recovery.fleet_breaker.FleetBreaker: the fleet breaker's repair slots (ecs_node, one item per cluster).
Every write that could be retried is conditional, so a retried step never double-counts (reboots, restarts) or
overwrites a newer state. Item shapes: docs/data-model.md."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from recovery.fleet_breaker import FleetBreaker
from recovery.job_table import JobTable
from recovery.models import NodeStatus
from recovery.schema import TTL_ATTRIBUTE
from recovery.settings import Settings
from recovery.storage import TableStore, conditional_write, plain, to_dynamo, write_or_read

STATE_KEY = "STATE"
HISTORY_PREFIX = "HISTORY#"
MAX_REBOOT_TIMES_KEPT = 20  # enough for any sane budget window; keeps the STATE row small


class NodeTable(TableStore):
    """ecs_node: each node's STATE row (its lock, reboots and status) and its HISTORY# rows. Here, beside Tables,
    because a history key's unique part comes from this module's `uuid`, which the simulator seeds
    (gpu_recovery.simulate) so that a scenario writes the same keys every run."""

    def get_node(self, node_id: str) -> dict[str, Any] | None:
        item = self.node.get_item(Key={"nodeId": node_id, "recordKey": STATE_KEY}, ConsistentRead=True).get("Item")
        return plain(item) if item else None

    def lock_node(
        self, node_id: str, container_instance_arn: str, me: str, now: str, *, dead_owner: str | None = None
    ) -> tuple[bool, dict[str, Any] | None]:
        """Take the node's lock if it is free (or already ours), or, with `dead_owner`, take it over from that
        execution, which no longer runs: atomic, so of two executions taking over the same dead lock one wins.
        Refused, also the STATE row as the condition saw it (what the winner wrote)."""
        free = f"(attribute_not_exists(lockOwner) OR lockOwner = :me{' OR lockOwner = :dead' if dead_owner else ''})"
        return write_or_read(
            self.node.update_item,
            Key={"nodeId": node_id, "recordKey": STATE_KEY},
            UpdateExpression=(
                "SET lockOwner = :me, lockedAt = :now, #status = :checking, containerInstanceArn = :ci, "
                "updatedAt = :now, reboots = if_not_exists(reboots, :empty)"
            ),
            ConditionExpression=f"{free} AND (attribute_not_exists(#status) OR NOT #status IN (:held, :quarantined))",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":me": me,
                ":now": now,
                ":checking": NodeStatus.CHECKING,
                ":ci": container_instance_arn,
                ":empty": [],
                ":quarantined": NodeStatus.QUARANTINED,
                ":held": NodeStatus.HELD,
            }
            | ({":dead": dead_owner} if dead_owner else {}),
        )

    def mark_agent_down(self, node_id: str, at: str) -> bool:
        """Record that a rebooting node's ECS agent was seen disconnected at `at` (only while it is REBOOTING)."""
        request = self._state_update(
            node_id, {"agentDownAt": at}, "#status = :rebooting", release=False,
            names={"#status": "status"}, values={":rebooting": NodeStatus.REBOOTING},
        )  # fmt: skip
        return conditional_write(self.node.update_item, **request)

    def nodes_locked_by(self, execution_arn: str) -> list[dict[str, Any]]:
        """The node STATE rows whose lock this execution holds (a scan: run only when an execution ended without
        releasing its locks, and the table holds one row per node plus history)."""
        return self.scan_sorted("node", Attr("recordKey").eq(STATE_KEY) & Attr("lockOwner").eq(execution_arn))

    def update_node(self, node_id: str, me: str, fields: dict[str, Any], *, release: bool) -> bool:
        """Update the STATE row this execution has locked; optionally release the lock. False when this execution
        does not hold the lock."""
        return conditional_write(
            self.node.update_item,
            **self._state_update(node_id, fields, "lockOwner = :me", release=release, values={":me": me}),
        )

    def update_node_once(
        self, node_id: str, me: str, fields: dict[str, Any], *, marker: str
    ) -> tuple[bool, dict[str, Any] | None]:
        """update_node keeping the lock, once per execution: only if the `marker` attribute (which `fields` sets
        to `me`) does not already name this execution. Refused, also the STATE row as the condition saw it."""
        condition = f"lockOwner = :me AND (attribute_not_exists({marker}) OR {marker} <> :me)"
        return write_or_read(
            self.node.update_item, **self._state_update(node_id, fields, condition, release=False, values={":me": me})
        )

    @staticmethod
    def _state_update(
        node_id: str,
        fields: dict[str, Any],
        condition: str,
        *,
        release: bool,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The UpdateItem request that SETs `fields` on the node's STATE row if `condition` holds, optionally
        removing the lock."""
        update = "SET " + ", ".join(f"#{k} = :{k}" for k in fields)
        if release:
            update += " REMOVE lockOwner, lockedAt"
        return {
            "Key": {"nodeId": node_id, "recordKey": STATE_KEY},
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {f"#{k}": k for k in fields} | (names or {}),
            "ExpressionAttributeValues": {f":{k}": v for k, v in to_dynamo(fields).items()} | (values or {}),
        }

    def refund_reboot(self, node_id: str, me: str, now: str) -> bool:
        """Take back the reboot this execution counted (the last of `reboots`: nobody else records one while it
        holds the lock). Conditional on lastRebootBy = me, which it removes, so a retry refunds nothing twice."""
        reboots = (self.get_node(node_id) or {}).get("reboots", [])
        return conditional_write(
            self.node.update_item,
            Key={"nodeId": node_id, "recordKey": STATE_KEY},
            UpdateExpression="SET reboots = :reboots, updatedAt = :now REMOVE lastRebootBy",
            ConditionExpression="lockOwner = :me AND lastRebootBy = :me",
            ExpressionAttributeValues={":reboots": reboots[:-1], ":now": now, ":me": me},
        )

    def relabel_history(self, node_id: str, me: str, kind: str, new_kind: str, detail: dict[str, Any]) -> None:
        """Rewrite this execution's `kind` history rows as `new_kind` with `detail` (same key: the audit trail
        keeps when it was decided, and says what really happened)."""
        for row in self.history(node_id, me):
            if row["kind"] == kind:
                self.node.put_item(Item=row | {"kind": new_kind, "detail": to_dynamo(detail)})

    def add_history(self, node_id: str, kind: str, me: str, now: datetime, detail: dict[str, Any]) -> None:
        """A history row for what an execution did or found."""
        self._put_history(node_id, kind, now, detail, {"executionArn": me})

    def _put_history(
        self, node_id: str, kind: str, now: datetime, detail: dict[str, Any], actor: dict[str, str]
    ) -> None:
        row = {
            "nodeId": node_id,
            "recordKey": f"{HISTORY_PREFIX}{now.isoformat()}#{uuid.uuid4().hex[:8]}",
            "kind": kind,
            "at": now.isoformat(),
            "detail": detail,
            TTL_ATTRIBUTE: int((now + self.history_ttl).timestamp()),
        }
        self.node.put_item(Item=to_dynamo(row | actor))

    def history(self, node_id: str, execution_arn: str | None = None) -> list[dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": self.names["node"],
            "KeyConditionExpression": Key("nodeId").eq(node_id) & Key("recordKey").begins_with(HISTORY_PREFIX),
        }
        if execution_arn:
            request["FilterExpression"] = Attr("executionArn").eq(execution_arn)
        return self.all_items("query", **request)

    # ---- operator actions (gpu-recovery node release / quarantine) ------------------------------------
    def node_states(self, status: NodeStatus | None = None) -> list[dict[str, Any]]:
        """Every node's STATE row (a scan: the table holds one per GPU node plus history rows)."""
        condition = Attr("recordKey").eq(STATE_KEY)
        if status:
            condition = condition & Attr("status").eq(status)
        return self.scan_sorted("node", condition)

    def set_node_by_operator(
        self, node_id: str, fields: dict[str, Any], *, seen: dict[str, Any] | None, remove_lock: bool
    ) -> bool:
        """Set STATE fields for a human, only if the row is still as they saw it (`seen`: same status and
        lock owner; None: no row yet), so a recovery that locked the node meanwhile is never overwritten.
        `remove_lock` clears the lock (a stale one, or taken over on purpose). False when the row changed."""
        values: dict[str, Any] = {}
        if seen is None:
            condition = "attribute_not_exists(nodeId)"
        else:
            parts = []
            for attribute, key, placeholder in (
                ("#status", "status", ":seenStatus"),
                ("lockOwner", "lockOwner", ":seenOwner"),
            ):
                value = seen.get(key)
                if value is None:
                    parts.append(f"attribute_not_exists({attribute})")
                else:
                    parts.append(f"{attribute} = {placeholder}")
                    values[placeholder] = value
            condition = " AND ".join(parts)
        return conditional_write(
            self.node.update_item,
            **self._state_update(
                node_id, fields, condition, release=remove_lock, names={"#status": "status"}, values=values
            ),
        )

    def add_operator_history(self, node_id: str, kind: str, who: str, now: datetime, detail: dict[str, Any]) -> None:
        """A history row for a human's action: `by` says who; there is no executionArn."""
        self._put_history(node_id, kind, now, detail, {"by": who})


class Tables(JobTable, NodeTable, FleetBreaker):
    """All three concerns over one resource."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Tables:
        return cls(
            settings.TASK_TABLE_NAME, settings.JOB_TABLE_NAME, settings.NODE_TABLE_NAME, settings.HISTORY_TTL_DAYS
        )
