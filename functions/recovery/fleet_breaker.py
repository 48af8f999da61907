"""The fleet breaker's repair slots: one item per cluster in the node table (beside the nodes' rows), so that at
most a share of the cluster is rebooted or reset at once. Item shape: docs/data-model.md."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Attr

from recovery.storage import TableStore, conditional_write, plain

FLEET_PREFIX = "FLEET#"
REPAIRS_KEY = "REPAIRS"


class FleetBreaker(TableStore):
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
