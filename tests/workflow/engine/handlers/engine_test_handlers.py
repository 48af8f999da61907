"""Tiny Lambda handlers for the engine tests, resolved as ``engine_test_handlers.<function>``."""

import threading
from typing import Any

import boto3


class InvalidInput(Exception):
    pass


def echo_context(event: Any, context: Any) -> dict[str, Any]:
    return {
        "event": event,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }


def reject(event: Any, context: Any) -> None:
    raise InvalidInput(f"bad input: {event}")


# Set by a test to let ``hold`` return: a handler still running holds its execution RUNNING in real time.
RELEASE = threading.Event()


def hold(event: Any, context: Any) -> None:
    RELEASE.wait(timeout=30)


def describe_cluster(event: Any, context: Any) -> list[str]:
    return [c["clusterName"] for c in boto3.client("ecs").describe_clusters(clusters=[event["cluster"]])["clusters"]]


def complete_own_token(event: Any, context: Any) -> None:
    """Completes the calling .waitForTaskToken state at once (as AwaitAgent does for an agent already back)."""
    boto3.client("stepfunctions").send_task_success(taskToken=event["token"], output='{"done": true}')


def ignore_token(event: Any, context: Any) -> None:
    """Leaves the calling .waitForTaskToken state waiting: only its timeout ends it."""
