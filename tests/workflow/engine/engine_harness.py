"""Helpers for the engine tests (a module of its own: conftest.py is not importable by name)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ecs.models import ecs_backends
from moto.moto_api import state_manager

from gpu_recovery.engine import LocalEngine

HANDLERS = Path(__file__).parent / "handlers"
StartEngine = Callable[..., LocalEngine]


def run(
    engine: LocalEngine,
    tmp_path: Path,
    definition: dict[str, Any],
    execution_input: dict[str, Any] | None = None,
    *,
    substitutions: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Deploy ``definition``, run one execution to its end, return describe_execution."""
    asl = tmp_path / "definition.asl.json"
    asl.write_text(json.dumps(definition))
    machine = engine.deploy_state_machine(f"sm-{tmp_path.name}"[:80], asl, substitutions or {})
    execution = engine.start_execution(machine, "run-1", execution_input or {})
    return engine.wait(execution, timeout=timeout)


def failed_event(engine: LocalEngine, execution_arn: str) -> dict[str, Any]:
    """The details of the execution's first TaskFailed / TaskTimedOut event."""
    for event in engine.history(execution_arn):
        for key in ("taskFailedEventDetails", "taskTimedOutEventDetails"):
            if key in event:
                return dict(event[key])
    raise AssertionError("no failed task in the history")


def ecs_cluster(region: str = "us-east-1") -> dict[str, str]:
    """One cluster with one registered EC2 container instance and a one-container task definition."""
    ec2 = boto3.client("ec2", region_name=region)
    ecs = boto3.client("ecs", region_name=region)
    cluster = ecs.create_cluster(clusterName="gpu")["cluster"]["clusterArn"]
    instance = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]
    document = json.dumps({"instanceId": instance["InstanceId"], "region": region})
    container_instance = ecs.register_container_instance(cluster="gpu", instanceIdentityDocument=document)
    task_definition = ecs.register_task_definition(
        family="dcgm-check",
        containerDefinitions=[{"name": "dcgm", "image": "nvidia/dcgm", "memory": 512, "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    return {
        "cluster": cluster,
        "instance_id": instance["InstanceId"],
        "container_instance": container_instance["containerInstance"]["containerInstanceArn"],
        "task_definition": task_definition,
    }


@contextmanager
def ecs_tasks_never_stop() -> Iterator[None]:
    """moto advances an ECS task one status per DescribeTasks; hold every task in RUNNING instead."""
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10**9})
    try:
        yield
    finally:
        state_manager.unset_transition(model_name="ecs::task")


def stop_first_task(exit_code: int, timeout: float = 10.0) -> str:
    """Wait for the first task RunTask placed, then stop it the way the simulated fleet does: in moto's backend,
    with its container's exit code. Returns the task ARN."""
    backend = ecs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    deadline = time.monotonic() + timeout
    while not backend.tasks.get("gpu"):
        if time.monotonic() > deadline:
            raise TimeoutError("no ECS task was started")
        time.sleep(0.005)
    task = next(iter(backend.tasks["gpu"].values()))
    task.containers[0].exitCode = exit_code
    task.status = "STOPPED"
    return str(task.task_arn)


def run_check(cluster: dict[str, str], timeout_seconds: int | None = None) -> dict[str, Any]:
    """A state machine whose one state runs the DCGM-like check task pinned to the cluster's instance."""
    check: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::ecs:runTask.sync",
        "Parameters": {
            "Cluster": cluster["cluster"],
            "TaskDefinition": cluster["task_definition"],
            "LaunchType": "EC2",
            "Group": "dcgm-check",
            "PlacementConstraints": [{"Type": "memberOf", "Expression": f"ec2InstanceId == {cluster['instance_id']}"}],
            "Overrides": {
                "ContainerOverrides": [{"Name": "dcgm", "Environment": [{"Name": "DIAG_LEVEL", "Value": "2"}]}]
            },
        },
        "End": True,
    }
    if timeout_seconds is not None:
        check["TimeoutSeconds"] = timeout_seconds
    return {"StartAt": "Check", "States": {"Check": check}}
