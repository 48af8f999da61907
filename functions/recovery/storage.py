"""What the three table classes (recovery.job_table, recovery.node_table, recovery.fleet_breaker) share: the
DynamoDB resource (injectable), the conversions between DynamoDB and JSON values, every read of all pages, and
the one place that interprets a storage error: a write refused by its condition is an answer (False, or the item
as the condition saw it), any other error propagates unchanged, so the state machine's Retry and Catch see the
service's own error."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from recovery.aws import CLIENT_CONFIG

if TYPE_CHECKING:  # the boto3 stubs are a development dependency: nothing is imported at run time
    from mypy_boto3_dynamodb.literals import PaginatorName
    from mypy_boto3_dynamodb.service_resource import DynamoDBServiceResource, Table

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


class TableStore:
    """The three tables' names and the DynamoDB resource they are read and written through."""

    def __init__(
        self,
        task_table: str,
        job_table: str,
        node_table: str,
        history_ttl_days: int,
        *,
        resource: DynamoDBServiceResource | None = None,
    ) -> None:
        self.names = {"task": task_table, "job": job_table, "node": node_table}
        self.history_ttl = timedelta(days=history_ttl_days)
        self._resource = resource

    @cached_property
    def resource(self) -> DynamoDBServiceResource:
        """The DynamoDB service resource: the one given (a test's, another session's), else the default session's."""
        return self._resource or boto3.resource("dynamodb", config=CLIENT_CONFIG)

    @cached_property
    def task(self) -> Table:
        return self.resource.Table(self.names["task"])

    @cached_property
    def job(self) -> Table:
        return self.resource.Table(self.names["job"])

    @cached_property
    def node(self) -> Table:
        return self.resource.Table(self.names["node"])

    def all_items(self, operation: PaginatorName, **request: Any) -> list[dict[str, Any]]:
        """Every page of a Query or Scan, through botocore's paginator. The resource's client takes and returns
        plain Python values and condition objects, as Table methods do: boto3 registers its DynamoDB
        serialisation and condition-expression handlers on that client's events (boto3/dynamodb/transform.py,
        DynamoDBHighLevelResource), and each page is one call through them."""
        pages = self.resource.meta.client.get_paginator(operation).paginate(**request)
        return list(plain([item for page in pages for item in page["Items"]]))

    def scan_sorted(self, table: str, condition: Any) -> list[dict[str, Any]]:
        """Every item of one of the tables that matches `condition`, ordered by node or job id."""
        items = self.all_items("scan", TableName=self.names[table], FilterExpression=condition, ConsistentRead=True)
        return sorted(items, key=lambda item: str(item.get("nodeId") or item.get("jobId")))
