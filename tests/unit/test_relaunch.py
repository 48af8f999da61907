"""recovery.relaunch: what is recorded about how a task was launched, and the RunTask request rebuilt from it."""

from __future__ import annotations

from typing import Any

from unit_helpers import load_event

from recovery.ecs_task import EcsTask
from recovery.relaunch import fill_security_groups, launch_record, run_task_request

ENI = {
    "id": "a0b1c2d3",
    "type": "ElasticNetworkInterface",
    "status": "DELETED",
    "details": [
        {"name": "subnetId", "value": "subnet-0abc"},
        {"name": "networkInterfaceId", "value": "eni-0abc"},
        {"name": "privateIPv4Address", "value": "10.0.1.17"},
    ],
}
CLUSTER = "gpu-training"


def task(**changes: Any) -> EcsTask:
    return EcsTask.model_validate(load_event("task_stopped_gpu")["detail"] | changes)


def record(launch: dict[str, Any]) -> dict[str, Any]:
    return {
        "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/gpu-training/0fb1",
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/llm-train:12",
        "group": "job-a",
        "startedBy": "AWS Step Functions",
        "overrides": {"containerOverrides": []},
        "launch": launch,
    }


def test_capacity_provider_instead_of_launch_type() -> None:
    launch = launch_record(task(capacityProviderName="gpu-asg-cp", launchType="EC2"), {})
    assert launch == {"capacityProviderStrategy": [{"capacityProvider": "gpu-asg-cp", "weight": 1}]}
    assert launch_record(task(capacityProviderName=None), {}) == {"launchType": "EC2"}


def test_awsvpc_task_keeps_subnet_and_security_groups() -> None:
    launch = launch_record(task(attachments=[ENI]), {"eni-0abc": ["sg-1", "sg-2"]})
    assert launch["awsvpc"] == {"subnets": ["subnet-0abc"], "securityGroups": ["sg-1", "sg-2"]}
    request, why = run_task_request(record(launch), CLUSTER, "token")
    assert why == ""
    assert request is not None
    assert request["networkConfiguration"] == {"awsvpcConfiguration": launch["awsvpc"]}
    assert "awsvpc" not in request


def test_unknown_security_groups_are_borrowed_from_the_job_or_refused() -> None:
    gone = launch_record(task(attachments=[ENI]), {})
    assert "securityGroups" not in gone["awsvpc"]
    request, why = run_task_request(record(gone), CLUSTER, "token")
    assert request is None
    assert "security groups" in why
    records = [record(gone), record(launch_record(task(attachments=[ENI]), {"eni-0abc": ["sg-9"]}))]
    records[0]["launch"]["awsvpc"].pop("securityGroups", None)
    fill_security_groups(records)
    assert records[0]["launch"]["awsvpc"]["securityGroups"] == ["sg-9"]


def test_tags_but_not_ecs_own_and_execute_command() -> None:
    tags = [{"key": "training-job", "value": "llm-7b"}, {"key": "aws:ecs:clusterName", "value": CLUSTER}]
    launch = launch_record(task(tags=tags, enableExecuteCommand=True), {})
    assert launch["tags"] == [{"key": "training-job", "value": "llm-7b"}]
    assert launch["enableExecuteCommand"] is True


def test_request_repeats_the_launch() -> None:
    launch = {
        "capacityProviderStrategy": [{"capacityProvider": "cp", "weight": 1}],
        "tags": [{"key": "k", "value": "v"}],
    }
    request, _ = run_task_request(record(launch), CLUSTER, "token")
    assert request == {
        "clientToken": "token",
        "cluster": CLUSTER,
        "taskDefinition": "arn:aws:ecs:us-east-1:123456789012:task-definition/llm-train:12",
        "count": 1,
        "overrides": {"containerOverrides": []},
        # never on a node a recovery holds (its own constraints come from the task definition)
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:gpu-recovery.under-repair !exists"}],
        "group": "job-a",
        "startedBy": "AWS Step Functions",
        "capacityProviderStrategy": [{"capacityProvider": "cp", "weight": 1}],
        "tags": [{"key": "k", "value": "v"}],
    }


def test_a_task_recorded_before_launch_records_runs_as_ec2() -> None:
    old = record({})
    del old["launch"]
    request, _ = run_task_request(old, CLUSTER, "token")
    assert request is not None
    assert request["launchType"] == "EC2"
