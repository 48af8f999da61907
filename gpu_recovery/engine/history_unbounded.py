"""Correction: moto lets an execution's history grow without bound; AWS ends the execution at 25,000 events.

Step Functions keeps at most 25,000 events in an execution's history, a hard quota (Step Functions developer
guide, "Avoid reaching the history quota" and "Step Functions service quotas"): when the execution has 24,999
events, event 25,000 is either its ExecutionSucceeded, or an ExecutionFailed that ends it. The error is
``States.Runtime`` with the cause "The execution reached the maximum number of history events (25000)." (as AWS
reports it, e.g. loads/ardere#86 and aws-samples/amazon-omics-end-to-end-genomics#3). moto 5.2.5 numbers events
without limit.

Here the event that would be number 25,000 is replaced by that ExecutionFailed, the execution's root environment
is failed (every Map iteration and branch frame stops at its next state, as moto stops them for any execution
error) and later events are not recorded. A state already running (a Lambda, a .sync task) finishes its call, as
in AWS, but its result is not recorded. A state stopped half-way can raise on its way out (moto skips the rest of
its components); the execution keeps the history-limit error, not that one. Test: ``test_history_unbounded.py``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final
from unittest import mock

from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext, EventManager
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

MAX_HISTORY_EVENTS: Final = 25_000
HISTORY_LIMIT_ERROR: Final = "States.Runtime"
HISTORY_LIMIT_CAUSE: Final = f"The execution reached the maximum number of history events ({MAX_HISTORY_EVENTS})."


@contextmanager
def correct_history_unbounded(limit: int = MAX_HISTORY_EVENTS) -> Iterator[None]:
    """``limit`` is AWS's; tests lower it to reach it in a few states."""
    add_event = EventManager.add_event
    evaluation_environment = ExecutionWorker._get_evaluation_environment
    # Each execution's event manager -> its root environment (frames share the root's manager).
    roots: weakref.WeakKeyDictionary[EventManager, Environment] = weakref.WeakKeyDictionary()
    # Executions ended by the limit: their error stays the limit's.
    limited: weakref.WeakSet[Environment] = weakref.WeakSet()
    set_error = Environment.set_error
    lock = threading.Lock()

    def first_error_kept(env: Environment, error: ExecutionFailedEventDetails) -> None:
        if env not in limited:
            set_error(env, error)

    def root_environment(worker: ExecutionWorker) -> Environment:
        env = evaluation_environment(worker)
        roots[env.event_manager] = env
        return env

    # moto passes everything by keyword; the rest (details, timestamp, update_source_event_id) goes through as is.
    def bounded_add_event(
        manager: EventManager, context: EventHistoryContext, event_type: HistoryEventType, **rest: Any
    ) -> int:
        with lock:
            # The id the event would get: moto numbers from 1, without gaps.
            event_id: int = manager._event_id_gen._next_id
            if event_id > limit:
                return limit  # the execution already failed at the limit: nothing more is recorded
            if event_id < limit or event_type == HistoryEventType.ExecutionSucceeded:
                return add_event(manager, context=context, event_type=event_type, **rest)
            details = ExecutionFailedEventDetails(error=HISTORY_LIMIT_ERROR, cause=HISTORY_LIMIT_CAUSE)
            failed = EventDetails(executionFailedEventDetails=details)  # type: ignore[typeddict-item]  # total=True
            add_event(manager, context=context, event_type=HistoryEventType.ExecutionFailed, event_details=failed)
        # Outside the lock: failing the execution takes the environment's own lock, which a state may hold while
        # it records an event.
        root = roots.get(manager)
        if root is not None:
            set_error(root, details)
            limited.add(root)
        return limit

    with (
        mock.patch.object(ExecutionWorker, "_get_evaluation_environment", root_environment),
        mock.patch.object(EventManager, "add_event", bounded_add_event),
        mock.patch.object(Environment, "set_error", first_error_kept),
    ):
        yield
