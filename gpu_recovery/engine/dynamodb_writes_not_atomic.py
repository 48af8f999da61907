"""moto's DynamoDB evaluates a ConditionExpression and then writes, with nothing in between to stop another thread:
two concurrent conditional writes can both pass their condition. Real DynamoDB applies each conditional write
atomically, and the workflow's locks (job lock, node lock, counted reboots) rely on that. Executions run on moto's
threads, so here every DynamoDB item operation of moto's backend runs under one lock."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from moto.dynamodb.models import DynamoDBBackend

# Reads too: a strongly consistent read must not see an item half-way through another thread's write.
ITEM_OPERATIONS = ("put_item", "update_item", "delete_item", "transact_write_items", "get_item", "query", "scan")


@contextmanager
def correct_dynamodb_writes_not_atomic() -> Iterator[None]:
    lock = threading.RLock()

    def serialised(operation: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(operation)
        def run(self: DynamoDBBackend, *args: Any, **kwargs: Any) -> Any:
            with lock:
                return operation(self, *args, **kwargs)

        return run

    with ExitStack() as stack:
        for name in ITEM_OPERATIONS:
            stack.enter_context(mock.patch.object(DynamoDBBackend, name, serialised(getattr(DynamoDBBackend, name))))
        yield
