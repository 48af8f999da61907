"""How a task was launched, recorded before anything is stopped, and the RunTask request that launches it again.
Pure: no AWS, no clock.

DescribeTasks (and the ECS Task State Change event) show the capacity provider a task ran on, its launch type,
its awsvpc network interface (subnet, interface id), its tags and execute-command setting. They do not show the
RunTask call's own placement constraints and strategy, so those cannot be repeated; the task definition's
constraints apply by themselves. Tags are read before StopTask, which deletes them (ECS API reference, StopTask).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # ClassifyFailure's model, for annotations only: RestartJob imports this module too
    from recovery.ecs_task import EcsTask

ENI_ATTACHMENT = "ElasticNetworkInterface"
# A custom container instance attribute (ECS developer guide, "Amazon ECS container instance attributes": custom
# attributes, set with PutAttributes) that a recovery puts on a node when it takes the node's lock and deletes when
# it releases the node verified; a quarantined, held or suspect node keeps it until an operator releases it. A
# restart excludes nodes that carry it with a memberOf constraint (cluster query language: `!exists`), so a job's
# tasks never land on a node another recovery is checking or repairing while it is ACTIVE for its check.
UNDER_REPAIR_ATTRIBUTE = "gpu-recovery.under-repair"
NOT_UNDER_REPAIR = {"type": "memberOf", "expression": f"attribute:{UNDER_REPAIR_ATTRIBUTE} !exists"}
# RunTask rejects tags whose key starts with aws: (ECS API reference, RunTask tags); those are ECS's own.
_RESERVED_TAG_PREFIX = "aws:"


def network_interface(task: EcsTask) -> dict[str, str]:
    """The task's awsvpc interface details (subnetId, networkInterfaceId, ...); empty for bridge/host tasks."""
    for attachment in task.attachments:
        if attachment.get("type") == ENI_ATTACHMENT:
            return {d["name"]: d["value"] for d in attachment.get("details", []) if "name" in d and "value" in d}
    return {}


def launch_record(task: EcsTask, security_groups: Mapping[str, list[str]]) -> dict[str, Any]:
    """What RestartJob needs to launch the task again, beyond its task definition, overrides, group and startedBy.
    ``security_groups``: per network interface id, read while the interfaces existed."""
    launch: dict[str, Any] = {}
    if task.capacity_provider_name:
        launch["capacityProviderStrategy"] = [{"capacityProvider": task.capacity_provider_name, "weight": 1}]
    else:
        launch["launchType"] = task.launch_type or "EC2"
    interface = network_interface(task)
    if interface.get("subnetId"):
        groups = security_groups.get(interface.get("networkInterfaceId", ""))
        launch["awsvpc"] = {"subnets": [interface["subnetId"]], **({"securityGroups": groups} if groups else {})}
    tags = [t for t in task.tags if not t.get("key", "").startswith(_RESERVED_TAG_PREFIX)]
    if tags:
        launch["tags"] = tags
    if task.enable_execute_command:
        launch["enableExecuteCommand"] = True
    return launch


def fill_security_groups(records: list[dict[str, Any]]) -> None:
    """A stopped task's interface is often gone before we read it; its job's other tasks ran with the same
    network configuration, so their security groups stand in for its unknown ones."""
    known = next((r["launch"]["awsvpc"]["securityGroups"] for r in records if _groups(r)), None)
    for record in records:
        awsvpc = record.get("launch", {}).get("awsvpc")
        if awsvpc is not None and not awsvpc.get("securityGroups") and known:
            awsvpc["securityGroups"] = known


def _groups(record: Mapping[str, Any]) -> list[str]:
    return list(record.get("launch", {}).get("awsvpc", {}).get("securityGroups", []))


def run_task_request(record: Mapping[str, Any], cluster: str, client_token: str) -> tuple[dict[str, Any] | None, str]:
    """(RunTask parameters, "") for a recorded task, or (None, why it cannot be launched as it was)."""
    launch = dict(record.get("launch") or {"launchType": "EC2"})
    request: dict[str, Any] = {
        "clientToken": client_token,
        "cluster": cluster,
        "taskDefinition": record["taskDefinitionArn"],
        "count": 1,
        "overrides": record.get("overrides") or {},
        # One constraint: RunTask takes at most 10, counting the task definition's own (RunTask API reference,
        # placementConstraints), which still apply.
        "placementConstraints": [NOT_UNDER_REPAIR],
    }
    for key in ("group", "startedBy"):
        if record.get(key):
            request[key] = record[key]
    awsvpc = launch.pop("awsvpc", None)
    if awsvpc is not None:
        if not awsvpc.get("securityGroups"):
            # Without them RunTask would use the VPC's default security group: not how the task ran.
            return None, "its network interface is gone and no task of the job showed its security groups"
        request["networkConfiguration"] = {"awsvpcConfiguration": awsvpc}
    return request | launch, ""
