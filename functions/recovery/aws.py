"""The one place that calls ECS, CloudWatch Logs, Step Functions and SNS. Everything here is I/O; no decisions."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from itertools import islice
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from recovery.models import NodeRef
from recovery.relaunch import UNDER_REPAIR_ATTRIBUTE

if TYPE_CHECKING:  # annotations only: the boto3 stubs are a development dependency, and EcsTask is imported where used
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_ecs.literals import DesiredStatusType
    from mypy_boto3_ecs.type_defs import ContainerDefinitionOutputTypeDef
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_stepfunctions import SFNClient

    from recovery.ecs_task import EcsTask

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
    def client(self) -> ECSClient:
        return boto3.client("ecs", config=CLIENT_CONFIG)

    @cached_property
    def cluster_arn(self) -> str:
        clusters = self.client.describe_clusters(clusters=[self.cluster])["clusters"]
        if not clusters:
            raise LookupError(f"ECS cluster {self.cluster!r} not found")
        return str(clusters[0]["clusterArn"])

    def describe_tasks(self, task_arns: list[str], cluster: str | None = None) -> list[EcsTask]:
        # Imported here: only ClassifyFailure (and the CLI) describe tasks, so no other step's cold start creates
        # the task's model classes.
        from recovery.ecs_task import EcsTask  # noqa: PLC0415

        tasks: list[EcsTask] = []
        for batch in _batches(task_arns, DESCRIBE_TASKS_BATCH):
            response = self.client.describe_tasks(cluster=cluster or self.cluster, tasks=batch, include=["TAGS"])
            tasks += [EcsTask.model_validate(t) for t in response["tasks"]]
        return tasks

    def family_tasks(self, families: list[str], desired_status: DesiredStatusType) -> list[EcsTask]:
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

    def nodes(self, container_instance_arns: list[str]) -> dict[str, NodeRef]:
        """The nodes behind container instances, with the instance type ECS records for each (the
        `ecs.instance-type` attribute ECS sets on every EC2 container instance: ECS developer guide, "Attributes")."""
        nodes: dict[str, NodeRef] = {}
        for batch in _batches(container_instance_arns, DESCRIBE_CONTAINER_INSTANCES_BATCH):
            response = self.client.describe_container_instances(cluster=self.cluster, containerInstances=batch)
            for ci in response["containerInstances"]:
                types = [a.get("value") for a in ci.get("attributes", []) if a["name"] == "ecs.instance-type"]
                nodes[ci["containerInstanceArn"]] = NodeRef(
                    ec2_instance_id=ci["ec2InstanceId"],
                    container_instance_arn=ci["containerInstanceArn"],
                    instance_type=types[0] if types else None,
                )
        return nodes

    def agent_connected(self, container_instance_arn: str) -> bool:
        """Whether the container instance's ECS agent is connected now (ContainerInstance.agentConnected)."""
        response = self.client.describe_container_instances(
            cluster=self.cluster, containerInstances=[container_instance_arn]
        )
        return bool(response["containerInstances"] and response["containerInstances"][0]["agentConnected"])

    def run_task(self, request: dict[str, Any]) -> tuple[str | None, str]:
        """(new task ARN, "") or (None, why not): a refused call is one task's problem, not the job's."""
        try:
            response = self.client.run_task(**request)
        except ClientError as error:
            return None, f"{error.response['Error'].get('Code')}: {error.response['Error'].get('Message', '')}"
        if response["tasks"]:
            return str(response["tasks"][0]["taskArn"]), ""
        reasons = ", ".join(f.get("reason", "unknown") for f in response.get("failures", [])) or "no task started"
        return None, reasons

    def drain(self, container_instance_arns: list[str]) -> list[str]:
        """Set container instances DRAINING: ECS places no new task on them (and moves service tasks away).
        Returns ECS's failure reasons, if any."""
        if not container_instance_arns:
            return []
        response = self.client.update_container_instances_state(
            cluster=self.cluster, containerInstances=container_instance_arns, status="DRAINING"
        )
        return [f"{f.get('arn', '?')}: {f.get('reason', '?')}" for f in response.get("failures", [])]

    def mark_under_repair(self, container_instance_arn: str) -> None:
        """Put the under-repair attribute on the node: restarts exclude it (recovery/relaunch.py)."""
        self._attribute(self.client.put_attributes, container_instance_arn)

    def clear_under_repair(self, container_instance_arn: str) -> None:
        """Delete the under-repair attribute (a custom attribute is deleted by name and target, without its value:
        DeleteAttributes API reference)."""
        self._attribute(self.client.delete_attributes, container_instance_arn)

    def _attribute(self, call: Any, container_instance_arn: str) -> None:
        try:
            call(
                cluster=self.cluster, attributes=[{"name": UNDER_REPAIR_ATTRIBUTE, "targetId": container_instance_arn}]
            )
        except ClientError as error:
            # TargetNotFoundException (botocore's ECS model, PutAttributes and DeleteAttributes): the container
            # instance is deregistered, so nothing can be placed on it anyway.
            if error.response["Error"].get("Code") != "TargetNotFoundException":
                raise

    def container_instance_count(self) -> int:
        pages = self.client.get_paginator("list_container_instances").paginate(cluster=self.cluster)
        return sum(len(page["containerInstanceArns"]) for page in pages)

    def _container_definitions(self, task_definition_arn: str) -> list[ContainerDefinitionOutputTypeDef]:
        definition = self.client.describe_task_definition(taskDefinition=task_definition_arn)["taskDefinition"]
        return definition["containerDefinitions"]

    def essential_containers(self, task_definition_arn: str) -> frozenset[str]:
        """Names of the containers the task definition marks essential (ContainerDefinition.essential defaults
        to true when omitted, per the ECS API reference)."""
        return frozenset(
            c["name"] for c in self._container_definitions(task_definition_arn) if c.get("essential", True)
        )

    def log_location(self, task_definition_arn: str, container_name: str) -> tuple[str, str] | None:
        """(log group, stream prefix) of a container using the awslogs driver."""
        for container in self._container_definitions(task_definition_arn):
            log = container.get("logConfiguration")
            if log and container["name"] == container_name and log["logDriver"] == "awslogs":
                options = log.get("options", {})
                return options["awslogs-group"], options.get("awslogs-stream-prefix", "")
        return None


class Ec2:
    @cached_property
    def client(self) -> EC2Client:
        return boto3.client("ec2")

    def security_groups(self, interface_ids: list[str]) -> dict[str, list[str]]:
        """Security group ids per network interface that still exists. A filter, not NetworkInterfaceIds: that
        fails the whole call when one interface is gone (a stopped awsvpc task's interface is deleted)."""
        if not interface_ids:
            return {}
        pages = self.client.get_paginator("describe_network_interfaces").paginate(
            Filters=[{"Name": "network-interface-id", "Values": interface_ids}]
        )
        return {
            eni["NetworkInterfaceId"]: [g["GroupId"] for g in eni.get("Groups", [])]
            for page in pages
            for eni in page["NetworkInterfaces"]
        }


class StepFunctions:
    @cached_property
    def client(self) -> SFNClient:
        return boto3.client("stepfunctions")

    def status(self, execution_arn: str) -> str | None:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE; None for an execution Step Functions
        does not know (never existed, or its history expired 90 days after it closed: the Step Functions quota
        for Standard workflows)."""
        try:
            return str(self.client.describe_execution(executionArn=execution_arn)["status"])
        except self.client.exceptions.ExecutionDoesNotExist:
            return None

    def is_running(self, execution_arn: str) -> bool:
        """Whether the execution still runs: one that does not holds nothing any more."""
        return self.status(execution_arn) == "RUNNING"

    def send_task_success(self, task_token: str, output: str) -> bool:
        """Complete a waiting task; False when its token is no longer waiting: already completed or its execution
        ended (TaskDoesNotExist), timed out (TaskTimedOut), or not a token at all (InvalidToken): Step Functions
        API reference, SendTaskSuccess, Errors."""
        gone = (
            self.client.exceptions.TaskDoesNotExist,
            self.client.exceptions.TaskTimedOut,
            self.client.exceptions.InvalidToken,
        )
        try:
            self.client.send_task_success(taskToken=task_token, output=output)
        except gone:
            return False
        return True


class Sns:
    def __init__(self, topic_arn: str) -> None:
        self.topic_arn = topic_arn

    @cached_property
    def client(self) -> SNSClient:
        return boto3.client("sns")

    def publish(self, subject: str, message: str) -> None:
        self.client.publish(TopicArn=self.topic_arn, Subject=subject, Message=message)


class Logs:
    @cached_property
    def client(self) -> CloudWatchLogsClient:
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
