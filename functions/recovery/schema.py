"""The three tables' keys, the task table's byJob index and the TTL attribute: declared once, CDK-free, for the
data layer (recovery.tables), the stack (infra/tables.py), the local stack and the tests. Item shapes:
docs/data-model.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Keys:
    partition: str
    sort: str | None = None

    def key_schema(self) -> list[dict[str, str]]:
        """The KeySchema of CreateTable (HASH, then RANGE)."""
        keys = [(self.partition, "HASH")] + ([(self.sort, "RANGE")] if self.sort else [])
        return [{"AttributeName": name, "KeyType": kind} for name, kind in keys]

    def names(self) -> list[str]:
        return [self.partition, *([self.sort] if self.sort else [])]


TASK_KEYS = Keys("taskArn")
JOB_KEYS = Keys("jobId")
# recordKey is "STATE" for the current row, "HISTORY#<iso-timestamp>#<suffix>" for history rows.
NODE_KEYS = Keys("nodeId", "recordKey")
# All tasks of one job, for StopJobTasks and RestartJob.
BY_JOB_INDEX = "byJob"
BY_JOB_KEYS = Keys("jobId", "taskArn")
# Node history rows expire (DynamoDB TTL: a Number attribute of epoch seconds).
TTL_ATTRIBUTE = "expiresAt"


def create_table_requests(task_table: str, job_table: str, node_table: str) -> list[dict[str, Any]]:
    """CreateTable requests for the three tables as the stack defines them (on-demand; every key a string)."""
    requests = []
    for name, keys, indexes in (
        (task_table, TASK_KEYS, {BY_JOB_INDEX: BY_JOB_KEYS}),
        (job_table, JOB_KEYS, {}),
        (node_table, NODE_KEYS, {}),
    ):
        attributes = dict.fromkeys([*keys.names(), *(n for index in indexes.values() for n in index.names())])
        request: dict[str, Any] = {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": keys.key_schema(),
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"} for n in attributes],
        }
        if indexes:
            request["GlobalSecondaryIndexes"] = [
                {"IndexName": index, "KeySchema": keys.key_schema(), "Projection": {"ProjectionType": "ALL"}}
                for index, keys in indexes.items()
            ]
        requests.append(request)
    return requests
