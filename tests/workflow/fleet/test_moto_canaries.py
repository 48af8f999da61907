"""Canaries for the moto 5.2.5 behaviours SimFleet patches (docs/simulated-fleet.md, "What each patch reproduces").

One test per row of gpu_recovery.sim.moto_patches.MOTO_PATCHES, ``test_moto_still_<row>``: it runs plain moto,
without the fleet, and asserts the behaviour the fleet corrects. When one fails, moto changed: revisit the row
(and drop it if moto now behaves like AWS)."""

from __future__ import annotations

import json
from typing import Any

import boto3
from fleet_helpers import REGION
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ecs.models import ecs_backends

from gpu_recovery.sim.moto_patches import MOTO_PATCHES, TASK_MODEL_CANARY


def cluster_with_task(ecs: Any, ec2: Any, name: str) -> str:
    ecs.create_cluster(clusterName=name)
    instance = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]
    document = json.dumps({"instanceId": instance["InstanceId"], "region": REGION})
    ecs.register_container_instance(cluster=name, instanceIdentityDocument=document)
    container = {"name": "c", "image": "i", "memory": 64, "essential": True, "stopTimeout": 120}
    ecs.register_task_definition(family=f"{name}-td", containerDefinitions=[container])
    return str(ecs.run_task(cluster=name, taskDefinition=f"{name}-td")["tasks"][0]["taskArn"])


def the_container_instance(ecs: Any, cluster: str) -> tuple[str, str]:
    """ARN and EC2 instance ID of the cluster's one container instance."""
    [arn] = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    described = ecs.describe_container_instances(cluster=cluster, containerInstances=[arn])["containerInstances"][0]
    return arn, described["ec2InstanceId"]


def test_every_patch_has_its_canary() -> None:
    canaries = {name.removeprefix("test_moto_still_") for name in globals() if name.startswith("test_moto_still_")}
    assert canaries == {*MOTO_PATCHES, TASK_MODEL_CANARY}


@mock_aws
def test_moto_still_describes_tasks_of_other_clusters() -> None:
    ecs, ec2 = boto3.client("ecs", region_name=REGION), boto3.client("ec2", region_name=REGION)
    other = cluster_with_task(ecs, ec2, "other")
    cluster_with_task(ecs, ec2, "gpu")
    found = ecs.describe_tasks(cluster="gpu", tasks=[other])["tasks"]
    assert [t["taskArn"] for t in found] == [other]  # ECS answers MISSING: the task is not in cluster "gpu"


@mock_aws
def test_moto_still_stops_a_task_when_it_is_described() -> None:
    ecs, ec2 = boto3.client("ecs", region_name=REGION), boto3.client("ec2", region_name=REGION)
    arn = cluster_with_task(ecs, ec2, "gpu")
    assert ecs.describe_tasks(cluster="gpu", tasks=[arn])["tasks"][0]["lastStatus"] != "RUNNING"


@mock_aws
def test_moto_still_stops_a_hung_task_at_once() -> None:
    ecs, ec2 = boto3.client("ecs", region_name=REGION), boto3.client("ec2", region_name=REGION)
    arn = cluster_with_task(ecs, ec2, "gpu")  # its container's stopTimeout is 120 s
    stopped = ecs.stop_task(cluster="gpu", task=arn, reason="test")["task"]
    assert (stopped["lastStatus"], stopped.get("stopCode")) == ("STOPPED", None)  # ECS: UserInitiated


@mock_aws
def test_moto_still_answers_container_instances_from_its_store() -> None:
    """The fleet changes moto's ContainerInstance objects (agent, resources) and moto reports them as they are."""
    ecs, ec2 = boto3.client("ecs", region_name=REGION), boto3.client("ec2", region_name=REGION)
    cluster_with_task(ecs, ec2, "gpu")
    arn, _ = the_container_instance(ecs, "gpu")
    ecs_backends[DEFAULT_ACCOUNT_ID][REGION].container_instances["gpu"][arn.rsplit("/", 1)[-1]].agent_connected = False
    described = ecs.describe_container_instances(cluster="gpu", containerInstances=[arn])["containerInstances"][0]
    assert described["agentConnected"] is False


@mock_aws
def test_moto_still_ignores_a_termination_in_ecs() -> None:
    ecs, ec2 = boto3.client("ecs", region_name=REGION), boto3.client("ec2", region_name=REGION)
    cluster_with_task(ecs, ec2, "gpu")
    arn, instance_id = the_container_instance(ecs, "gpu")
    ec2.terminate_instances(InstanceIds=[instance_id])
    described = ecs.describe_container_instances(cluster="gpu", containerInstances=[arn])["containerInstances"][0]
    assert (described["status"], described["agentConnected"]) == ("ACTIVE", True)


@mock_aws
def test_moto_still_drains_a_terminated_instance() -> None:
    ecs, ec2 = boto3.client("ecs", region_name=REGION), boto3.client("ec2", region_name=REGION)
    cluster_with_task(ecs, ec2, "gpu")
    arn, instance_id = the_container_instance(ecs, "gpu")
    ec2.terminate_instances(InstanceIds=[instance_id])
    drained = ecs.update_container_instances_state(cluster="gpu", containerInstances=[arn], status="DRAINING")
    assert drained["containerInstances"][0]["status"] == "DRAINING"  # ECS: the instance is INACTIVE


@mock_aws
def test_moto_still_reports_a_command_successful_at_once() -> None:
    ec2, ssm = boto3.client("ec2", region_name=REGION), boto3.client("ssm", region_name=REGION)
    instance_id = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    command = ssm.send_command(
        InstanceIds=[instance_id], DocumentName="AWS-RunShellScript", Parameters={"commands": ["sleep 60"]}
    )["Command"]
    invocation = ssm.get_command_invocation(CommandId=command["CommandId"], InstanceId=instance_id)
    assert invocation["Status"] == "Success"


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
    arn, instance_id = the_container_instance(ecs, "gpu")
    ec2.reboot_instances(InstanceIds=[instance_id])
    described = ecs.describe_container_instances(cluster="gpu", containerInstances=[arn])["containerInstances"][0]
    assert described["agentConnected"] is True
