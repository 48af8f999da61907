"""EventBridge "ECS Task State Change" events, shaped like the AWS event reference
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_task_events.html)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from moto.moto_api._internal import mock_random


def iso(at: datetime | None) -> str | None:
    """Event timestamps are ISO strings with milliseconds and a Z, like ECS sends them."""
    if at is None:
        return None
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def task_state_change(task: Any, account: str, region: str, at: datetime) -> dict[str, Any]:
    """The event ECS emits for the current state of ``task`` (a moto Task the fleet keeps AWS-shaped)."""
    containers = []
    for container in task.containers:
        item: dict[str, Any] = {
            "containerArn": container.container_arn,
            "lastStatus": container.last_status,
            "name": container.name,
            "image": container.image,
            "runtimeId": container.runtime_id,
            "taskArn": task.task_arn,
            "networkInterfaces": [],
            "cpu": str(container.cpu or 0),
            "memory": str(container.memory) if container.memory else None,
            "gpuIds": list(container.gpu_ids),
        }
        if container.exitCode is not None:
            item["exitCode"] = container.exitCode
        if getattr(container, "reason", None):
            item["reason"] = container.reason
        containers.append({k: v for k, v in item.items() if v is not None})
    detail: dict[str, Any] = {
        "attachments": list(task.attachments),
        "attributes": [{"name": "ecs.cpu-architecture", "value": "x86_64"}],
        "availabilityZone": task.availability_zone,
        "clusterArn": task.cluster_arn,
        "connectivity": task.connectivity,
        "connectivityAt": iso(task.connectivity_at),
        "containerInstanceArn": task.container_instance_arn,
        "containers": containers,
        "cpu": task.cpu,
        "createdAt": iso(task.created_at),
        "desiredStatus": task.desired_status,
        "enableExecuteCommand": False,
        "group": task.group,
        "launchType": "EC2",
        "lastStatus": task.last_status,
        "memory": task.memory,
        "overrides": {
            "containerOverrides": task.overrides.get("containerOverrides")
            or [{"name": c.name} for c in task.containers]
        },
        "startedAt": iso(task.started_at),
        "startedBy": task.started_by,
        "taskArn": task.task_arn,
        "taskDefinitionArn": task.task_definition_arn,
        "updatedAt": iso(at),
        "version": task.version,
    }
    if task.last_status == "STOPPED":
        detail.update(
            {
                "executionStoppedAt": iso(task.execution_stopped_at),
                "stopCode": task.stop_code,
                "stoppedAt": iso(task.stopped_at),
                "stoppedReason": task.stopped_reason,
                "stoppingAt": iso(task.stopping_at),
            }
        )
    return ecs_event("ECS Task State Change", task.task_arn, detail, account=account, region=region, at=at)


def ecs_event(
    detail_type: str, resource: str, detail: dict[str, Any], *, account: str, region: str, at: datetime
) -> dict[str, Any]:
    """The EventBridge envelope of an ECS event about ``resource``."""
    return {
        "version": "0",
        "id": str(mock_random.uuid4()),  # seeded, like every moto identifier
        "detail-type": detail_type,
        "source": "aws.ecs",
        "account": account,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [resource],
        "detail": detail,
    }
