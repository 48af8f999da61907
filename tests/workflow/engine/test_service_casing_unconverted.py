"""Correction ``service_casing_unconverted`` (moto #10076): PascalCase in, PascalCase out, as in AWS."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from engine_harness import StartEngine, ecs_cluster, run

pytestmark = pytest.mark.slow

DESCRIBE = {
    "StartAt": "Describe",
    "States": {
        "Describe": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:ecs:describeContainerInstances",
            "Parameters": {"Cluster.$": "$.cluster", "ContainerInstances.$": "States.Array($.instance)"},
            "ResultSelector": {
                "connected.$": "$.ContainerInstances[0].AgentConnected",
                "ec2.$": "$.ContainerInstances[0].Ec2InstanceId",
                "registeredAt.$": "$.ContainerInstances[0].RegisteredAt",
            },
            "Next": "Drain",
        },
        "Drain": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:ecs:updateContainerInstancesState",
            "Parameters": {
                "Cluster.$": "$$.Execution.Input.cluster",
                "ContainerInstances.$": "States.Array($$.Execution.Input.instance)",
                "Status": "DRAINING",
            },
            "ResultSelector": {"status.$": "$.ContainerInstances[0].Status"},
            "ResultPath": "$.drain",
            "Next": "Reboot",
        },
        "Reboot": {
            "Type": "Task",
            "Resource": "arn:aws:states:::aws-sdk:ec2:rebootInstances",
            "Parameters": {"InstanceIds.$": "States.Array($.ec2)"},
            "ResultPath": None,
            "End": True,
        },
    },
}


def _input(cluster: dict[str, str]) -> dict[str, str]:
    return {"cluster": cluster["cluster"], "instance": cluster["container_instance"]}


def test_moto_still_passes_pascal_case_to_ecs(start_engine: StartEngine, tmp_path: Path) -> None:
    """Shows the moto behaviour. If this fails, moto converts the casing: drop the correction."""
    engine = start_engine(without=("service_casing_unconverted",))
    result = run(engine, tmp_path, DESCRIBE, _input(ecs_cluster()))
    assert result["status"] == "FAILED"
    assert result["cause"].endswith("'Cluster'")  # moto's ECS handler looked for the camelCase key


def test_ecs_and_ec2_calls_take_and_give_pascal_case(start_engine: StartEngine, tmp_path: Path) -> None:
    engine = start_engine()
    cluster = ecs_cluster()
    result = run(engine, tmp_path, DESCRIBE, _input(cluster))
    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    assert output["connected"] is True
    assert output["ec2"] == cluster["instance_id"]
    # Datetimes become ISO strings, or describe_execution could not serialise the output.
    assert isinstance(output["registeredAt"], str)
    assert output["registeredAt"][:4].isdigit()
    assert output["drain"] == {"status": "DRAINING"}
    ecs = boto3.client("ecs", region_name="us-east-1")
    described = ecs.describe_container_instances(cluster="gpu", containerInstances=[cluster["container_instance"]])
    assert described["containerInstances"][0]["status"] == "DRAINING"
