"""The one place that calls ECS and CloudWatch Logs. Everything here is I/O; no decisions."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from itertools import islice
from typing import Any

import boto3
from botocore.config import Config

from recovery.models import EcsTask

DESCRIBE_TASKS_BATCH = 100  # DescribeTasks accepts at most 100 tasks per call
DESCRIBE_CONTAINER_INSTANCES_BATCH = 100  # DescribeContainerInstances: at most 100 container instances per call
# Adaptive retries: standard retries plus client-side rate limiting once a service throttles, so a storm of
# recoveries backs off instead of failing (botocore "Retries" guide: the adaptive retry mode).
CLIENT_CONFIG = Config(retries={"mode": "adaptive"})
MAX_LOG_EVENTS = 10_000  # a DCGM run logs a few hundred lines; bound the read in case a check goes wild


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


class Ecs:
    def __init__(self, cluster: str) -> None:
        self.cluster = cluster

    @cached_property
    def client(self) -> Any:
        return boto3.client("ecs", config=CLIENT_CONFIG)

    @cached_property
    def cluster_arn(self) -> str:
        clusters = self.client.describe_clusters(clusters=[self.cluster])["clusters"]
        if not clusters:
            raise LookupError(f"ECS cluster {self.cluster!r} not found")
        return str(clusters[0]["clusterArn"])

    def describe_tasks(self, task_arns: list[str], cluster: str | None = None) -> list[EcsTask]:
        tasks: list[EcsTask] = []
        for batch in _batches(task_arns, DESCRIBE_TASKS_BATCH):
            response = self.client.describe_tasks(cluster=cluster or self.cluster, tasks=batch, include=["TAGS"])
            tasks += [EcsTask.model_validate(t) for t in response["tasks"]]
        return tasks

    def family_tasks(self, families: list[str], desired_status: str) -> list[EcsTask]:
        """The cluster's tasks of these task definition families with this desired status (RUNNING, or STOPPED:
        ECS keeps stopped tasks visible for about an hour). ListTasks filters by family on the server
        (ListTasks API reference: `family`), so the cost follows the families, not the cluster."""
        paginator = self.client.get_paginator("list_tasks")
        arns = [
            arn
            for family in families
            for page in paginator.paginate(cluster=self.cluster, family=family, desiredStatus=desired_status)
            for arn in page["taskArns"]
        ]
        return self.describe_tasks(arns)

    def ec2_instance_ids(self, container_instance_arns: list[str]) -> dict[str, str]:
        ids: dict[str, str] = {}
        for batch in _batches(container_instance_arns, DESCRIBE_CONTAINER_INSTANCES_BATCH):
            response = self.client.describe_container_instances(cluster=self.cluster, containerInstances=batch)
            ids |= {ci["containerInstanceArn"]: ci["ec2InstanceId"] for ci in response["containerInstances"]}
        return ids

    def run_task_like(self, record: dict[str, Any], client_token: str) -> tuple[str | None, str | None]:
        """Start a copy of a recorded task: same task definition, overrides, group and startedBy. The client
        token makes a retried call start nothing twice. Returns (new task ARN, None) or (None, why not)."""
        request: dict[str, Any] = {
            "clientToken": client_token,
            "cluster": self.cluster,
            "taskDefinition": record["taskDefinitionArn"],
            "count": 1,
            "launchType": "EC2",
            "overrides": record.get("overrides") or {},
        }
        for key in ("group", "startedBy"):
            if record.get(key):
                request[key] = record[key]
        response = self.client.run_task(**request)
        if response["tasks"]:
            return str(response["tasks"][0]["taskArn"]), None
        reasons = ", ".join(f.get("reason", "unknown") for f in response.get("failures", [])) or "no task started"
        return None, reasons

    def container_instance_count(self) -> int:
        pages = self.client.get_paginator("list_container_instances").paginate(cluster=self.cluster)
        return sum(len(page["containerInstanceArns"]) for page in pages)

    def log_location(self, task_definition_arn: str, container_name: str) -> tuple[str, str] | None:
        """(log group, stream prefix) of a container using the awslogs driver."""
        definition = self.client.describe_task_definition(taskDefinition=task_definition_arn)["taskDefinition"]
        for container in definition["containerDefinitions"]:
            log = container.get("logConfiguration") or {}
            if container["name"] == container_name and log.get("logDriver") == "awslogs":
                options = log.get("options", {})
                return options["awslogs-group"], options.get("awslogs-stream-prefix", "")
        return None


class Logs:
    @cached_property
    def client(self) -> Any:
        return boto3.client("logs", config=CLIENT_CONFIG)

    def read_stream(self, group: str, stream: str) -> str | None:
        """The whole stream as text, oldest first; None when the stream does not exist."""
        lines: list[str] = []
        kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        try:
            while len(lines) < MAX_LOG_EVENTS:
                page = self.client.get_log_events(**kwargs)
                lines += [event["message"] for event in page["events"]]
                if not page["events"] or page["nextForwardToken"] == kwargs.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextForwardToken"]
        except self.client.exceptions.ResourceNotFoundException:
            return None
        return "\n".join(lines)


def task_definition_family(task_definition_arn: str) -> str:
    """The family of a task definition ARN (…:task-definition/FAMILY:REVISION)."""
    return task_definition_arn.rsplit("/", 1)[-1].rsplit(":", 1)[0]


def awslogs_stream(prefix: str, container_name: str, task_arn: str) -> str:
    """The stream name the awslogs driver uses: prefix/container/task-id."""
    return f"{prefix}/{container_name}/{task_arn.rsplit('/', 1)[-1]}"
