"""Shared helpers of the unit tests (a module of its own: conftest.py is not importable by name)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ecs.models import ecs_backends

from recovery.schema import create_table_requests

FIXTURES = Path(__file__).parent / "fixtures"
REGION = "us-east-1"
CLUSTER = "gpu-training"
TASK_TABLE, JOB_TABLE, NODE_TABLE = "ecs_task", "ecs_job", "ecs_node"
DCGM_CONTAINER = "dcgm-check"
DCGM_LOG_GROUP = "/gpu-recovery/dcgm-check"
DCGM_STREAM_PREFIX = "dcgm"
EXECUTION_ARN = f"arn:aws:states:{REGION}:{DEFAULT_ACCOUNT_ID}:execution:gpu-recovery:exec-1"
OTHER_EXECUTION_ARN = f"arn:aws:states:{REGION}:{DEFAULT_ACCOUNT_ID}:execution:gpu-recovery:exec-2"

ENV = {
    "TASK_TABLE_NAME": TASK_TABLE,
    "JOB_TABLE_NAME": JOB_TABLE,
    "NODE_TABLE_NAME": NODE_TABLE,
    "ECS_CLUSTER_NAME": CLUSTER,
    "DCGM_CONTAINER_NAME": DCGM_CONTAINER,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "EcsGpuRecovery",
    "POWERTOOLS_SERVICE_NAME": "gpu-recovery-test",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def load_event(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def execution(arn: str = EXECUTION_ARN) -> dict[str, str]:
    return {"id": arn, "name": arn.rsplit(":", 1)[-1], "startTime": "2026-11-20T03:14:30.000Z"}


@dataclass
class FakeLambdaContext:
    function_name: str = "gpu-recovery-step"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:gpu-recovery-step"
    aws_request_id: str = "c0ffee00-0000-4000-8000-000000000001"


def create_tables() -> None:
    """The tables as the stack defines them (recovery.schema)."""
    ddb = boto3.client("dynamodb", region_name=REGION)
    for request in create_table_requests(TASK_TABLE, JOB_TABLE, NODE_TABLE):
        ddb.create_table(**request)


def scan(table: str) -> list[dict[str, Any]]:
    return boto3.resource("dynamodb", region_name=REGION).Table(table).scan(ConsistentRead=True)["Items"]


def all_items() -> dict[str, list[dict[str, Any]]]:
    return {name: scan(name) for name in (TASK_TABLE, JOB_TABLE, NODE_TABLE)}


@dataclass
class Fleet:
    """Two GPU container instances; job-a has a running rank on node 2; job-b runs on node 2 too."""

    cluster_arn: str
    instance_ids: list[str]
    container_instances: list[str]
    train_task_definition: str
    dcgm_task_definition: str
    sibling: str
    other_job_task: str
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def backend(self) -> Any:
        return ecs_backends[DEFAULT_ACCOUNT_ID][REGION]

    def event(self, name: str = "task_stopped_gpu") -> dict[str, Any]:
        """A fixture event rewritten to point at this moto cluster's instance and task definition."""
        event = load_event(name)
        detail = event["detail"]
        if detail["clusterArn"].endswith(f"/{CLUSTER}"):
            detail["containerInstanceArn"] = self.container_instances[0]
            if not detail["taskDefinitionArn"].endswith(":task-definition/gpu-recovery-dcgm-check:3"):
                detail["taskDefinitionArn"] = self.train_task_definition
        return event

    def stopped_task_in_ecs(self, exit_code: int = 1) -> str:
        """A failed GPU rank of job-a that DescribeTasks knows, with a real-format (32 hex) task id."""
        ecs = boto3.client("ecs", region_name=REGION)
        arn = ecs.start_task(
            cluster=CLUSTER,
            taskDefinition=self.train_task_definition,
            containerInstances=[self.container_instances[0]],
            group="job-a",
            startedBy="airflow/llm-train",
            overrides=copy.deepcopy(load_event("task_stopped_gpu")["detail"]["overrides"]),
        )["tasks"][0]["taskArn"]
        tasks = self.backend.tasks[CLUSTER]
        task = tasks.pop(arn)
        task.id = "9a8b7c6d5e4f30211f0e9d8c7b6a5f4e"
        tasks[task.task_arn] = task
        task.containers[0].gpu_ids = ["GPU-0c4a6b9e-3f1d-4e8b-a2c7-5d9e8f7a6b5c"]
        task.containers[0].exitCode = exit_code
        task.stop_code = "EssentialContainerExited"
        task.stopped_reason = "Essential container in task exited"
        task.status = "STOPPED"
        task.desired_status = "STOPPED"
        task.version = 4
        return str(task.task_arn)
