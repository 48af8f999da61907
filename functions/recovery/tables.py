"""Data access for the three tables. Every write that could be retried is conditional, so a retried
step never double-counts (reboots, restarts) or overwrites a newer state. Item shapes: docs/data-model.md."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

import boto3
from boto3.dynamodb.conditions import Attr, Key
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from recovery.aws import CLIENT_CONFIG
from recovery.models import JobStatus, NodeStatus, TaskRecoveryStatus
from recovery.schema import BY_JOB_INDEX, TTL_ATTRIBUTE
from recovery.settings import Settings

STATE_KEY = "STATE"
# The fleet breaker's slots: one item per cluster in ecs_node, beside the nodes' rows.
FLEET_PREFIX = "FLEET#"
REPAIRS_KEY = "REPAIRS"
HISTORY_PREFIX = "HISTORY#"
MAX_REBOOT_TIMES_KEPT = 20  # enough for any sane budget window; keeps the STATE row small
_DESERIALIZE = TypeDeserializer().deserialize


def plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; the state machine wants JSON."""
    return json.loads(json.dumps(value, default=lambda d: int(d) if d == int(d) else float(d)))


def to_dynamo(value: Any) -> Any:
    return json.loads(json.dumps(value), parse_float=Decimal)


def is_conditional_failure(error: ClientError) -> bool:
    """A write refused by its condition (also inside a transaction), not any other failure."""
    code = error.response["Error"]["Code"]
    if code == "TransactionCanceledException":
        reasons = error.response.get("CancellationReasons", [])
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons)
    return code == "ConditionalCheckFailedException"


def conditional_write(write: Callable[..., Any], **request: Any) -> bool:
    """Make a conditional write: True if it applied, False if its condition refused it (another execution got
    there first, or this one already did); any other error propagates."""
    try:
        write(**request)
    except ClientError as error:
        if is_conditional_failure(error):
            return False
        raise
    return True


def write_or_read(write: Callable[..., Any], **request: Any) -> tuple[bool, dict[str, Any] | None]:
    """A conditional write that, when its condition refuses it, returns the item as the condition saw it
    (ReturnValuesOnConditionCheckFailure=ALL_OLD: DynamoDB API reference, UpdateItem/PutItem), so that a lost race
    needs no second read: (True, None) if it applied, (False, the item or None when there was none) if not."""
    try:
        write(**request, ReturnValuesOnConditionCheckFailure="ALL_OLD")
    except ClientError as error:
        if is_conditional_failure(error):
            item = error.response.get("Item")
            return False, plain({k: _DESERIALIZE(v) for k, v in item.items()}) if item else None
        raise
    return True, None


class Tables:
    @classmethod
    def from_settings(cls, settings: Settings) -> Tables:
        return cls(
            settings.TASK_TABLE_NAME, settings.JOB_TABLE_NAME, settings.NODE_TABLE_NAME, settings.HISTORY_TTL_DAYS
        )

    def __init__(
        self, task_table: str, job_table: str, node_table: str, history_ttl_days: int, *, resource: Any = None
    ) -> None:
        self.names = {"task": task_table, "job": job_table, "node": node_table}
        self.history_ttl = timedelta(days=history_ttl_days)
        self._resource = resource

    @cached_property
    def resource(self) -> Any:
        """The DynamoDB service resource: the one given (a test's, another session's), else the default session's."""
        return self._resource or boto3.resource("dynamodb", config=CLIENT_CONFIG)

    @cached_property
    def task(self) -> Any:
        return self.resource.Table(self.names["task"])

    @cached_property
    def job(self) -> Any:
        return self.resource.Table(self.names["job"])

    @cached_property
    def node(self) -> Any:
        return self.resource.Table(self.names["node"])

    # ---- ecs_task / ecs_job ---------------------------------------------------------------------
    def get_task(self, task_arn: str) -> dict[str, Any] | None:
        item = self.task.get_item(Key={"taskArn": task_arn}, ConsistentRead=True).get("Item")
        return plain(item) if item else None

    def get_tasks(self, task_arns: list[str]) -> list[dict[str, Any]]:
        return [item for arn in task_arns if (item := self.get_task(arn))]

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        item = self.job.get_item(Key={"jobId": job_id}, ConsistentRead=True).get("Item")
        return plain(item) if item else None

    def record_failure(self, task_item: dict[str, Any], job_id: str, now: str, *, manual: bool, me: str) -> bool:
        """Record the failed task and make sure its job exists, in one transaction. False when a newer
        event for the task is already recorded (the caller treats it as a duplicate); a retry of execution
        `me` finds its own record and writes it again."""
        newer_guard = "lastEventVersion <= :v" if manual else "lastEventVersion < :v"
        newer_guard = f"{newer_guard} OR recoveryExecution = :me"
        # The resource's client serialises Python values to DynamoDB types, as Table methods do.
        return conditional_write(
            self.resource.meta.client.transact_write_items,
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.names["task"],
                        "Item": to_dynamo(task_item),
                        "ConditionExpression": f"attribute_not_exists(taskArn) OR {newer_guard}",
                        "ExpressionAttributeValues": {":v": task_item["lastEventVersion"], ":me": me},
                    }
                },
                {
                    "Update": {
                        "TableName": self.names["job"],
                        "Key": {"jobId": job_id},
                        "UpdateExpression": (
                            "SET #status = if_not_exists(#status, :running), "
                            "restartCount = if_not_exists(restartCount, :zero), "
                            "createdAt = if_not_exists(createdAt, :now), "
                            "lastFailedTask = :task, lastFailureAt = :now, updatedAt = :now"
                        ),
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": {
                            ":running": JobStatus.RUNNING,
                            ":zero": 0,
                            ":now": now,
                            ":task": task_item["taskArn"],
                        },
                    }
                },
            ],
        )

    def record_sibling(self, task_item: dict[str, Any]) -> None:
        """Remember a running sibling's launch parameters so the job can be restarted as it was."""
        conditional_write(
            self.task.put_item, Item=to_dynamo(task_item), ConditionExpression=Attr("taskArn").not_exists()
        )

    def job_task_items(self, job_id: str) -> list[dict[str, Any]]:
        """Every recorded task of the job (the byJob index): which were restarted already, and the task
        definitions the job ran. A GSI read is eventually consistent; a restart is recorded minutes before
        the job can fail again (a recovery takes longer than that), so the index has it."""
        return self._all_items(
            self.task.query,
            IndexName=BY_JOB_INDEX,
            KeyConditionExpression=Key("jobId").eq(job_id),
            ProjectionExpression="taskArn, taskDefinitionArn, restartedAs",
        )

    def finish_job(
        self, job_id: str, me: str, *, status: JobStatus, outcome: dict[str, Any], new_tasks: dict[str, str], now: str
    ) -> bool:
        """Record the job's outcome once per execution (a retried step changes nothing; the recorded outcome
        is what a retry answers). Returns False when this execution had already recorded it."""
        restarted = bool(new_tasks)
        update = (
            "SET #status = :status, lastOutcome = :outcome, lastReason = :reason, lastRecovery = :me, "
            "lastOutcomeDetail = :detail, updatedAt = :now, tasks = :tasks"
        )
        if restarted:
            update += ", restartCount = if_not_exists(restartCount, :zero) + :one"
        values: dict[str, Any] = {
            ":status": status,
            ":outcome": outcome["outcome"],
            ":reason": outcome["reason"],
            ":detail": to_dynamo(outcome),
            ":me": me,
            ":now": now,
            ":tasks": sorted(new_tasks.values()),
        }
        if restarted:
            values.update({":zero": 0, ":one": 1})
        if not conditional_write(
            self.job.update_item,
            Key={"jobId": job_id},
            UpdateExpression=update,
            ConditionExpression="lockOwner = :me AND (attribute_not_exists(lastRecovery) OR lastRecovery <> :me)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
        ):
            return False
        self.record_restarts(new_tasks, now)
        return True

    def record_restarts(self, new_tasks: dict[str, str], now: str) -> None:
        """Each restarted task's row says what it was restarted as (so no later step restarts it again)."""
        for old, new in new_tasks.items():
            self.task.update_item(
                Key={"taskArn": old},
                UpdateExpression="SET restartedAs = :new, recoveryStatus = :status, updatedAt = :now",
                ExpressionAttributeValues={":new": new, ":status": TaskRecoveryStatus.RESTARTED, ":now": now},
            )

    def release_job_after_error(self, job_id: str, me: str, now: str, error: str) -> bool:
        return conditional_write(
            self.job.update_item,
            Key={"jobId": job_id},
            UpdateExpression=(
                "SET #status = :error, lastReason = :reason, updatedAt = :now REMOVE lockOwner, lockedAt"
            ),
            ConditionExpression="lockOwner = :me",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":error": JobStatus.ERROR, ":reason": error, ":now": now, ":me": me},
        )

    def mark_task(self, task_arn: str, status: TaskRecoveryStatus, now: str, *, handled_by: str | None = None) -> bool:
        """Set a recorded task's recovery status; False when the task was never recorded (or, with
        `handled_by`, when another execution handles its failure)."""
        condition = Attr("taskArn").exists()
        if handled_by:
            condition = condition & Attr("recoveryExecution").eq(handled_by)
        return conditional_write(
            self.task.update_item,
            Key={"taskArn": task_arn},
            UpdateExpression="SET recoveryStatus = :s, updatedAt = :now",
            ConditionExpression=condition,
            ExpressionAttributeValues={":s": status, ":now": now},
        )

    # ---- ecs_node ---------------------------------------------------------------------------------
    def get_node(self, node_id: str) -> dict[str, Any] | None:
        item = self.node.get_item(Key={"nodeId": node_id, "recordKey": STATE_KEY}, ConsistentRead=True).get("Item")
        return plain(item) if item else None

    def lock_node(
        self, node_id: str, container_instance_arn: str, me: str, now: str, *, dead_owner: str | None = None
    ) -> bool:
        """Take the node's lock if it is free (or already ours), or, with `dead_owner`, take it over from that
        execution, which no longer runs: atomic, so of two executions taking over the same dead lock one wins."""
        free = f"(attribute_not_exists(lockOwner) OR lockOwner = :me{' OR lockOwner = :dead' if dead_owner else ''})"
        return conditional_write(
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

    def locked_by(self, execution_arn: str) -> tuple[list[str], list[dict[str, Any]]]:
        """The job ids and node STATE rows whose lock this execution holds (scans: run only when an execution
        ended without releasing its locks, and both tables hold one row per job / node plus history)."""
        jobs = self._scan(self.job, Attr("lockOwner").eq(execution_arn))
        nodes = self._scan(self.node, Attr("recordKey").eq(STATE_KEY) & Attr("lockOwner").eq(execution_arn))
        return sorted(str(job["jobId"]) for job in jobs), nodes

    @classmethod
    def _scan(cls, table: Any, condition: Any) -> list[dict[str, Any]]:
        items = cls._all_items(table.scan, FilterExpression=condition, ConsistentRead=True)
        return sorted(items, key=lambda item: str(item.get("nodeId") or item.get("jobId")))

    def update_node(self, node_id: str, me: str, fields: dict[str, Any], *, release: bool, guard: str = "") -> bool:
        """Update the STATE row this execution has locked; optionally release the lock. `guard` adds a
        condition (e.g. that a reboot was not already counted). False when the condition does not hold."""
        condition = "lockOwner = :me" + (f" AND ({guard})" if guard else "")
        return conditional_write(
            self.node.update_item, **self._state_update(node_id, fields, condition, release=release, values={":me": me})
        )

    def update_node_or_read(
        self, node_id: str, me: str, fields: dict[str, Any], *, guard: str
    ) -> tuple[bool, dict[str, Any] | None]:
        """update_node keeping the lock; refused, also the STATE row as the condition saw it."""
        return write_or_read(
            self.node.update_item,
            **self._state_update(node_id, fields, f"lockOwner = :me AND ({guard})", release=False, values={":me": me}),
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
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("nodeId").eq(node_id) & Key("recordKey").begins_with(HISTORY_PREFIX)
        }
        if execution_arn:
            kwargs["FilterExpression"] = Attr("executionArn").eq(execution_arn)
        return self._all_items(self.node.query, **kwargs)

    @staticmethod
    def _all_items(read: Callable[..., Any], **request: Any) -> list[dict[str, Any]]:
        """Every page of a Query or Scan."""
        items: list[dict[str, Any]] = []
        while True:
            page = read(**request)
            items += page["Items"]
            if "LastEvaluatedKey" not in page:
                return list(plain(items))
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # ---- operator actions (gpu-recovery node release / quarantine) ------------------------------------
    def node_states(self, status: NodeStatus | None = None) -> list[dict[str, Any]]:
        """Every node's STATE row (a scan: the table holds one per GPU node plus history rows)."""
        condition = Attr("recordKey").eq(STATE_KEY)
        if status:
            condition = condition & Attr("status").eq(status)
        return self._scan(self.node, condition)

    def locked_jobs(self) -> list[dict[str, Any]]:
        """Every job row that holds a lock (a scan, for operators)."""
        return self._scan(self.job, Attr("lockOwner").exists())

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

    # ---- fleet breaker ----------------------------------------------------------------------------
    def take_repair_slot(
        self, cluster: str, node_id: str, me: str, *, now: datetime, lease: timedelta, slots: int
    ) -> tuple[bool, list[str]]:
        """Take one of `slots` repair slots for the node (atomic: `size(slots) < :slots`), or keep the one it
        holds. Returns (taken, the other nodes in repair). A slot whose lease ran out (its execution died
        without giving it back) is freed first."""
        key = {"nodeId": f"{FLEET_PREFIX}{cluster}", "recordKey": REPAIRS_KEY}
        conditional_write(
            self.node.put_item, Item={**key, "slots": {}}, ConditionExpression=Attr("nodeId").not_exists()
        )
        holders: dict[str, Any] = plain(self.node.get_item(Key=key, ConsistentRead=True)["Item"]["slots"])
        live = []
        for holder, slot in holders.items():
            if holder == node_id:
                continue
            if datetime.fromisoformat(slot["until"]) > now:
                live.append(holder)
                continue
            conditional_write(
                self.node.update_item,
                Key=key,
                UpdateExpression="REMOVE slots.#n",
                ConditionExpression="slots.#n.#until = :until",
                ExpressionAttributeNames={"#n": holder, "#until": "until"},
                ExpressionAttributeValues={":until": slot["until"]},
            )
        taken = conditional_write(
            self.node.update_item,
            Key=key,
            UpdateExpression="SET slots.#n = :slot",
            ConditionExpression="attribute_exists(slots.#n) OR size(slots) < :slots",
            ExpressionAttributeNames={"#n": node_id},
            ExpressionAttributeValues={":slot": {"by": me, "until": (now + lease).isoformat()}, ":slots": slots},
        )
        return taken, live

    def repair_slots(self, cluster: str) -> dict[str, Any]:
        """The fleet breaker's slots: node id -> {by, until}."""
        key = {"nodeId": f"{FLEET_PREFIX}{cluster}", "recordKey": REPAIRS_KEY}
        item = self.node.get_item(Key=key, ConsistentRead=True).get("Item") or {}
        return dict(plain(item.get("slots", {})))

    def release_repair_slot(self, cluster: str, node_id: str, me: str) -> bool:
        """Give back the node's repair slot if this execution holds it."""
        return conditional_write(
            self.node.update_item,
            Key={"nodeId": f"{FLEET_PREFIX}{cluster}", "recordKey": REPAIRS_KEY},
            UpdateExpression="REMOVE slots.#n",
            ConditionExpression="slots.#n.#by = :me",
            ExpressionAttributeNames={"#n": node_id, "#by": "by"},
            ExpressionAttributeValues={":me": me},
        )
