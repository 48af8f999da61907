"""Correction ``dynamodb_writes_not_atomic``: two concurrent conditional writes cannot both pass their condition.

A barrier right after moto evaluates a ConditionExpression holds both writers there, which makes the race
deterministic: without the correction both conditions pass and both writes land; with it, the second writer only
evaluates its condition after the first has written, and is refused."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models import table as moto_table

from gpu_recovery.clock import SimClock
from gpu_recovery.engine import LocalEngine

BARRIER_TIMEOUT_SECONDS = 0.5


@pytest.fixture
def condition_barrier() -> Iterator[None]:
    barrier = threading.Barrier(2)
    evaluate = moto_table.get_filter_expression

    def held_after_evaluating(*args: Any, **kwargs: Any) -> Any:
        expression = evaluate(*args, **kwargs)
        original = expression.expr

        def expr(item: Any) -> bool:
            passed = bool(original(item))
            # With the correction the other writer waits behind us and the barrier breaks: go on and write.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=BARRIER_TIMEOUT_SECONDS)
            return passed

        expression.expr = expr
        return expression

    with mock.patch.object(moto_table, "get_filter_expression", held_after_evaluating):
        yield


def _race_for_the_lock() -> list[str]:
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName="locks",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    winners: list[str] = []
    refusals: list[str] = []

    def take(owner: str) -> None:
        try:
            client.put_item(
                TableName="locks",
                Item={"id": {"S": "node-1"}, "owner": {"S": owner}},
                ConditionExpression="attribute_not_exists(id)",
            )
            winners.append(owner)
        except ClientError as error:
            refusals.append(error.response["Error"]["Code"])

    threads = [threading.Thread(target=take, args=(owner,)) for owner in ("execution-a", "execution-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(refusals) <= {"ConditionalCheckFailedException"}
    return winners


@pytest.mark.usefixtures("condition_barrier")
def test_moto_still_lets_two_conditional_writes_both_pass() -> None:
    """Shows the moto behaviour. If this fails, moto serialises conditional writes: drop the correction."""
    with LocalEngine(SimClock(), without=["dynamodb_writes_not_atomic"]):
        assert sorted(_race_for_the_lock()) == ["execution-a", "execution-b"]


@pytest.mark.usefixtures("condition_barrier")
def test_only_one_of_two_racing_conditional_writes_wins() -> None:
    with LocalEngine(SimClock()):
        assert len(_race_for_the_lock()) == 1
