"""Correction ``service_error_names``: a service error reaches Retry/Catch under the name Step Functions gives it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from engine_harness import StartEngine, failed_event, run

pytestmark = pytest.mark.slow

MISSING_CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/missing"


def one_task(resource: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "StartAt": "Call",
        "States": {"Call": {"Type": "Task", "Resource": resource, "Parameters": parameters, "End": True}},
    }


DESCRIBE = one_task(
    "arn:aws:states:::aws-sdk:ecs:describeContainerInstances",
    {"Cluster": MISSING_CLUSTER, "ContainerInstances": ["x"]},
)
RUN_TASK = one_task("arn:aws:states:::ecs:runTask.sync", {"Cluster": MISSING_CLUSTER, "TaskDefinition": "dcgm-check:1"})


def test_moto_still_names_sdk_errors_in_lower_case(start_engine: StartEngine, tmp_path: Path) -> None:
    """Shows the moto behaviour. If this fails, moto names aws-sdk errors in PascalCase: drop the correction."""
    engine = start_engine(without=("service_error_names",))
    assert run(engine, tmp_path, DESCRIBE)["error"] == "ecs.ClusterNotFoundException"


def test_moto_still_turns_ecs_errors_into_a_runtime_error(start_engine: StartEngine, tmp_path: Path) -> None:
    """Shows the moto behaviour. If this fails, moto names ECS integration errors: drop the correction."""
    engine = start_engine(without=("service_error_names",))
    assert run(engine, tmp_path, RUN_TASK)["error"] == "States.Runtime"


def test_sdk_errors_carry_the_service_prefix(start_engine: StartEngine, tmp_path: Path) -> None:
    engine = start_engine()
    result = run(engine, tmp_path, DESCRIBE)
    assert result["error"] == "Ecs.ClusterNotFoundException"
    assert failed_event(engine, result["executionArn"])["error"] == "Ecs.ClusterNotFoundException"


def test_optimized_ecs_errors_carry_the_ecs_prefix(start_engine: StartEngine, tmp_path: Path) -> None:
    engine = start_engine()
    assert run(engine, tmp_path, RUN_TASK)["error"] == "ECS.ClusterNotFoundException"
