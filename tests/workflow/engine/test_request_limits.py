"""Correction ``request_limits_not_enforced``: requests AWS refuses for their size are refused locally too."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from engine_harness import StartEngine, ecs_cluster, run

from gpu_recovery.engine.request_limits import limit_violation

pytestmark = pytest.mark.slow

TASKS = [f"arn:aws:ecs:us-east-1:123456789012:task/gpu/{i:032x}" for i in range(101)]


def test_moto_still_describes_more_than_100_tasks(start_engine: StartEngine) -> None:
    """Shows the moto behaviour. If this fails, moto enforces the limit: drop the correction."""
    start_engine(without=("request_limits_not_enforced",))
    ecs_cluster()
    assert "tasks" in boto3.client("ecs").describe_tasks(cluster="gpu", tasks=TASKS)


def test_more_than_100_tasks_is_an_invalid_parameter(start_engine: StartEngine) -> None:
    start_engine()
    ecs_cluster()
    with pytest.raises(ClientError, match="InvalidParameterException"):
        boto3.client("ecs").describe_tasks(cluster="gpu", tasks=TASKS)
    assert "tasks" in boto3.client("ecs").describe_tasks(cluster="gpu", tasks=TASKS[:100])


@pytest.mark.parametrize(
    ("service", "operation", "params", "code"),
    [
        ("ecs", "DescribeContainerInstances", {"containerInstances": ["x"] * 101}, "InvalidParameterException"),
        ("ecs", "RunTask", {"count": 11}, "InvalidParameterException"),
        ("sns", "Publish", {"Subject": "x" * 100, "Message": "m"}, "InvalidParameter"),
        ("sns", "Publish", {"Subject": "two\nlines", "Message": "m"}, "InvalidParameter"),
        ("sns", "Publish", {"Message": "m" * (256 * 1024 + 1)}, "InvalidParameter"),
        ("stepfunctions", "StartExecution", {"name": "x" * 81}, "InvalidName"),
        ("stepfunctions", "StartExecution", {"name": "has space"}, "InvalidName"),
    ],
)
def test_aws_size_limits(service: str, operation: str, params: dict[str, object], code: str) -> None:
    violation = limit_violation(service, operation, params)
    assert violation is not None
    assert violation[0] == code


@pytest.mark.parametrize(
    ("service", "operation", "params"),
    [
        ("ecs", "RunTask", {"count": 10}),
        ("sns", "Publish", {"Subject": "x" * 99 + "", "Message": "m" * 256 * 1024}),
        ("sns", "Publish", {"Subject": "GPU — recovered", "Message": "m"}),
        ("stepfunctions", "StartExecution", {"name": "job-a-0123_v2-0"}),
    ],
)
def test_requests_within_the_limits_pass(service: str, operation: str, params: dict[str, object]) -> None:
    assert limit_violation(service, operation, params) is None


@pytest.mark.parametrize(("kib", "status"), [(150, "FAILED"), (100, "SUCCEEDED")])
def test_a_state_output_over_256_kb_fails_with_data_limit_exceeded(
    start_engine: StartEngine, tmp_path: Path, kib: int, status: str
) -> None:
    """moto enforces this one itself (its state and task output check): no correction, only this test."""
    engine = start_engine()
    doubled = {
        "StartAt": "Double",
        "States": {"Double": {"Type": "Pass", "Parameters": {"a.$": "$.x", "b.$": "$.x"}, "End": True}},
    }
    result = run(engine, tmp_path, doubled, {"x": "x" * (kib * 1024)})
    assert result["status"] == status
    assert result.get("error") == ("States.DataLimitExceeded" if status == "FAILED" else None)
