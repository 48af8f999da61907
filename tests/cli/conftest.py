"""CLI tests: a moto account with the stack's tables, a GPU cluster with tasks, a state machine and the stack's
outputs in CloudFormation; `cli` runs `gpu-recovery` in-process and returns (exit code, stdout, stderr)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from unittest import mock

import boto3
import pytest
from cli_helpers import CliResult, Deployment
from moto import mock_aws
from moto.ecs.models import Task
from moto.moto_api import state_manager

from gpu_recovery.cli import main
from gpu_recovery.local_stack import create_tables
from infra.config import Config

REGION = "us-east-1"
CLUSTER = "gpu-cluster"
STACK = "EcsGpuRecoveryStack"


@pytest.fixture(autouse=True)
def clean_env() -> Iterator[None]:
    """No deployment settings leak in from the environment; region and fake credentials for moto."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("GPU_RECOVERY_", "AWS_"))}
    keep.pop("STACK_NAME", None)
    keep |= {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    with mock.patch.dict(os.environ, keep, clear=True):
        yield


@pytest.fixture(autouse=True)
def aws_like_task_ids() -> Iterator[None]:
    """ECS task ids are 32 hex characters (what ClassifyFailure's ARN check expects); moto makes UUIDs."""
    original = Task.__init__

    def init(self: Task, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        self.id = self.id.replace("-", "")

    with mock.patch.object(Task, "__init__", init):
        yield


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    def run(*argv: str) -> CliResult:
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _definition(cluster_arn: str) -> str:
    return json.dumps(
        {
            "StartAt": "RunDcgmDiag",
            "States": {
                "RunDcgmDiag": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::ecs:runTask.sync",
                    "Parameters": {"Cluster": cluster_arn, "TaskDefinition": "dcgm"},
                    "End": True,
                }
            },
        }
    )


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    with mock_aws():
        config = Config.load(env={})
        create_tables(config)
        ecs, ec2 = boto3.client("ecs"), boto3.client("ec2")
        state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
        cluster_arn = ecs.create_cluster(clusterName=CLUSTER)["cluster"]["clusterArn"]
        ecs.create_cluster(clusterName="other-cluster")
        instance_ids, container_instances = [], []
        for _ in range(2):
            instance_id = ec2.run_instances(ImageId="ami-0gpu", MinCount=1, MaxCount=1, InstanceType="p4d.24xlarge")[
                "Instances"
            ][0]["InstanceId"]
            document = json.dumps({"instanceId": instance_id, "region": REGION, "instanceType": "p4d.24xlarge"})
            ci = ecs.register_container_instance(cluster=CLUSTER, instanceIdentityDocument=document)
            instance_ids.append(instance_id)
            container_instances.append(ci["containerInstance"]["containerInstanceArn"])
        train = ecs.register_task_definition(
            family="llm-train",
            containerDefinitions=[
                {
                    "name": "trainer",
                    "image": "trainer:1",
                    "memory": 1024,
                    "resourceRequirements": [{"type": "GPU", "value": "2"}],
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        tasks = [
            ecs.start_task(cluster=CLUSTER, taskDefinition=train, containerInstances=[ci], group="job-a")["tasks"][0][
                "taskArn"
            ]
            for ci in container_instances
        ]
        role = boto3.client("iam").create_role(RoleName="sfn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        state_machine_arn = boto3.client("stepfunctions").create_state_machine(
            name=f"{STACK}-recovery", definition=_definition(cluster_arn), roleArn=role
        )["stateMachineArn"]
        outputs = {
            "StateMachineArn": state_machine_arn,
            "TaskTableName": config.TASK_TABLE_NAME,
            "JobTableName": config.JOB_TABLE_NAME,
            "NodeTableName": config.NODE_TABLE_NAME,
        }
        template = {
            "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {k: {"Value": v} for k, v in outputs.items()},
        }
        boto3.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))
        try:
            yield Deployment(state_machine_arn, cluster_arn, instance_ids, container_instances, tasks, config)
        finally:
            state_manager.unset_transition(model_name="ecs::task")
