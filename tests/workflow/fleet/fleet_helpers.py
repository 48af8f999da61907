"""Helpers that talk to the simulated fleet through boto3, the way the workflow does."""

from __future__ import annotations

from typing import Any

import boto3

from gpu_recovery.sim import SimFleet

REGION = "us-east-1"
CLUSTER = "gpu-cluster"


def member_of(fleet: SimFleet, node: str) -> list[dict[str, str]]:
    return [{"type": "memberOf", "expression": f"ec2InstanceId == {fleet.instance_id(node)}"}]


def run_check(ecs: Any, fleet: SimFleet, node: str) -> dict[str, Any]:
    """RunTask of the DCGM check pinned to a node, the way the workflow's RunDcgmDiag state does it."""
    return ecs.run_task(  # type: ignore[no-any-return]
        cluster=CLUSTER,
        taskDefinition=fleet.dcgm_task_definition_arn,
        startedBy="AWS Step Functions",
        placementConstraints=member_of(fleet, node),
    )


def describe(ecs: Any, task_arn: str) -> dict[str, Any]:
    return ecs.describe_tasks(cluster=CLUSTER, tasks=[task_arn])["tasks"][0]  # type: ignore[no-any-return]


def instance(ecs: Any, fleet: SimFleet, node: str) -> dict[str, Any]:
    arn = fleet.container_instance_arn(node)
    return ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[arn])["containerInstances"][0]  # type: ignore[no-any-return]


def check_log(fleet: SimFleet, task_arn: str) -> list[str]:
    logs = boto3.client("logs", region_name=REGION)
    stream = f"dcgm/{fleet.dcgm_container_name}/{task_arn.rsplit('/', 1)[-1]}"
    events = logs.get_log_events(logGroupName=fleet.dcgm_log_group, logStreamName=stream, startFromHead=True)
    return [e["message"] for e in events["events"]]


def stop_job(ecs: Any, fleet: SimFleet, job: str) -> None:
    for arn in fleet.job_tasks(job):
        ecs.stop_task(cluster=CLUSTER, task=arn, reason="gpu-recovery: stopping job for diagnosis")
