"""Unit-test fixtures: the step Lambdas' environment, moto tables created as the stack creates them, and a moto
ECS cluster with GPU container instances and the tasks of one job."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from moto.moto_api import state_manager
from unit_helpers import (
    CLUSTER,
    DCGM_CONTAINER,
    DCGM_LOG_GROUP,
    DCGM_STREAM_PREFIX,
    ENV,
    REGION,
    FakeLambdaContext,
    Fleet,
    create_tables,
    load_event,
)

from recovery import clock
from recovery.settings import get_settings

# Powertools reads its environment when the handler modules create their singletons at import.
for _key in ("POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_SERVICE_NAME"):
    os.environ.setdefault(_key, ENV[_key])


@pytest.fixture
def context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The steps' waits, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(clock, "sleep", slept.append)
    return slept


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        create_tables()
        # The watched cluster: the node steps mark and clear nodes in it (a node it lacks is skipped).
        boto3.client("ecs", region_name=REGION).create_cluster(clusterName=CLUSTER)
        yield


@pytest.fixture
def fleet(aws: None) -> Iterator[Fleet]:
    ec2 = boto3.client("ec2", region_name=REGION)
    ecs = boto3.client("ecs", region_name=REGION)
    logs = boto3.client("logs", region_name=REGION)
    # moto advances a task one status per DescribeTasks: hold tasks where the test puts them.
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
    cluster_arn = ecs.create_cluster(clusterName=CLUSTER)["cluster"]["clusterArn"]
    instance_ids, container_instances = [], []
    for _ in range(2):
        instance = ec2.run_instances(ImageId="ami-0ecsgpu", MinCount=1, MaxCount=1, InstanceType="p4d.24xlarge")
        instance_id = instance["Instances"][0]["InstanceId"]
        document = json.dumps({"instanceId": instance_id, "region": REGION, "instanceType": "p4d.24xlarge"})
        ci = ecs.register_container_instance(cluster=CLUSTER, instanceIdentityDocument=document)
        instance_ids.append(instance_id)
        container_instances.append(ci["containerInstance"]["containerInstanceArn"])
    train = ecs.register_task_definition(
        family="llm-train",
        requiresCompatibilities=["EC2"],
        containerDefinitions=[
            {
                "name": "trainer",
                "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/llm-train:2026.11",
                "memory": 1024,
                "essential": True,
                "resourceRequirements": [{"type": "GPU", "value": "2"}],
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    logs.create_log_group(logGroupName=DCGM_LOG_GROUP)
    dcgm = ecs.register_task_definition(
        family="gpu-recovery-dcgm-check",
        requiresCompatibilities=["EC2"],
        containerDefinitions=[
            {
                "name": DCGM_CONTAINER,
                "image": "nvcr.io/nvidia/cloud-native/dcgm:4.2.3-1-ubuntu22.04",
                "memory": 2048,
                "essential": True,
                "resourceRequirements": [{"type": "GPU", "value": "8"}],
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-group": DCGM_LOG_GROUP,
                        "awslogs-region": REGION,
                        "awslogs-stream-prefix": DCGM_STREAM_PREFIX,
                    },
                },
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    overrides = load_event("task_stopped_gpu")["detail"]["overrides"]

    def start(group: str, instance: str) -> str:
        return str(
            ecs.start_task(
                cluster=CLUSTER,
                taskDefinition=train,
                containerInstances=[instance],
                group=group,
                startedBy="airflow/llm-train",
                overrides=overrides,
            )["tasks"][0]["taskArn"]
        )

    sibling = start("job-a", container_instances[1])
    other = start("job-b", container_instances[1])
    try:
        yield Fleet(cluster_arn, instance_ids, container_instances, train, dcgm, sibling, other)
    finally:
        state_manager.unset_transition(model_name="ecs::task")
