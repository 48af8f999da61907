"""Canaries for the moto 5.2.5 behaviours SimFleet patches (docs/simulated-fleet.md, "What each patch reproduces").

Each test runs plain moto, without the fleet, and asserts the behaviour the fleet corrects. When one fails, moto
changed: revisit the fleet's patch for it (and drop the patch if moto now behaves like AWS)."""

from __future__ import annotations

import json
from typing import Any

import boto3
from fleet_helpers import REGION
from moto import mock_aws


def cluster_with_task(ecs: Any, ec2: Any, name: str) -> str:
    ecs.create_cluster(clusterName=name)
    instance = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]
    document = json.dumps({"instanceId": instance["InstanceId"], "region": REGION})
    ecs.register_container_instance(cluster=name, instanceIdentityDocument=document)
    ecs.register_task_definition(
        family=f"{name}-td", containerDefinitions=[{"name": "c", "image": "i", "memory": 64, "essential": True}]
    )
    return str(ecs.run_task(cluster=name, taskDefinition=f"{name}-td")["tasks"][0]["taskArn"])


@mock_aws
def test_moto_still_describes_tasks_of_other_clusters() -> None:
    ecs, ec2 = boto3.client("ecs", region_name=REGION), boto3.client("ec2", region_name=REGION)
    other = cluster_with_task(ecs, ec2, "other")
    cluster_with_task(ecs, ec2, "gpu")
    found = ecs.describe_tasks(cluster="gpu", tasks=[other])["tasks"]
    assert [t["taskArn"] for t in found] == [other]  # ECS answers MISSING: the task is not in cluster "gpu"


@mock_aws
def test_moto_still_ignores_placement_constraints() -> None:
    ecs, ec2 = boto3.client("ecs", region_name=REGION), boto3.client("ec2", region_name=REGION)
    cluster_with_task(ecs, ec2, "gpu")
    placed = ecs.run_task(
        cluster="gpu",
        taskDefinition="gpu-td",
        placementConstraints=[{"type": "memberOf", "expression": "ec2InstanceId == i-00000000000000000"}],
    )
    assert placed["tasks"]
    assert placed["failures"] == []


@mock_aws
def test_moto_still_lists_stopped_tasks_by_default() -> None:
    ecs, ec2 = boto3.client("ecs", region_name=REGION), boto3.client("ec2", region_name=REGION)
    arn = cluster_with_task(ecs, ec2, "gpu")
    ecs.stop_task(cluster="gpu", task=arn, reason="test")
    assert arn in ecs.list_tasks(cluster="gpu")["taskArns"]


@mock_aws
def test_moto_still_sends_a_command_without_targets_to_every_instance() -> None:
    ec2, ssm = boto3.client("ec2", region_name=REGION), boto3.client("ssm", region_name=REGION)
    first, _second = ec2.run_instances(ImageId="ami-12345678", MinCount=2, MaxCount=2)["Instances"]
    command = ssm.send_command(
        InstanceIds=[first["InstanceId"]],
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": ["nvidia-smi --gpu-reset -i 0"]},
    )["Command"]
    assert len(command["InstanceIds"]) == 2


@mock_aws
def test_moto_still_ignores_a_reboot_in_ecs() -> None:
    ecs, ec2 = boto3.client("ecs", region_name=REGION), boto3.client("ec2", region_name=REGION)
    cluster_with_task(ecs, ec2, "gpu")
    [arn] = ecs.list_container_instances(cluster="gpu")["containerInstanceArns"]
    instance_id = ecs.describe_container_instances(cluster="gpu", containerInstances=[arn])["containerInstances"][0][
        "ec2InstanceId"
    ]
    ec2.reboot_instances(InstanceIds=[instance_id])
    described = ecs.describe_container_instances(cluster="gpu", containerInstances=[arn])["containerInstances"][0]
    assert described["agentConnected"] is True
