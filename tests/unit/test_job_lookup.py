"""ClassifyFailure finds a job's other tasks by the job's task definition families and its recorded tasks
(byJob), not by listing and describing every task of the cluster."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import classify_failure
import pytest
from classify_failure import task_id
from unit_helpers import CLUSTER, REGION, TASK_TABLE, FakeLambdaContext, Fleet, execution

# The fixture event's task stopped at 2026-11-20T03:14:27Z.
IN_THE_INCIDENT = datetime(2026, 11, 20, 3, 12, tzinfo=UTC)


def _definition(family: str) -> str:
    ecs = boto3.client("ecs", region_name=REGION)
    return str(
        ecs.register_task_definition(
            family=family,
            requiresCompatibilities=["EC2"],
            containerDefinitions=[{"name": "main", "image": "busybox", "memory": 512, "essential": True}],
        )["taskDefinition"]["taskDefinitionArn"]
    )


def _start(fleet: Fleet, definition: str, group: str) -> str:
    ecs = boto3.client("ecs", region_name=REGION)
    return str(
        ecs.start_task(
            cluster=CLUSTER, taskDefinition=definition, containerInstances=[fleet.container_instances[1]], group=group
        )["tasks"][0]["taskArn"]
    )


def _stop(fleet: Fleet, arn: str) -> None:
    """The task crashed in the incident: its essential container exited 1 (moto reports 0 by default, which is a
    rank that finished its work and is no part of the incident)."""
    task = fleet.backend.tasks[CLUSTER][arn]
    task.last_status = task.desired_status = "STOPPED"
    task.stopped_at = IN_THE_INCIDENT
    for container in task.containers:
        container.exitCode = 1


def _record(arn: str, definition: str, **extra: Any) -> None:
    item = {"taskArn": arn, "jobId": "job-a", "taskDefinitionArn": definition, "lastEventVersion": 1}
    boto3.resource("dynamodb", region_name=REGION).Table(TASK_TABLE).put_item(Item=item | extra)


@pytest.fixture
def ecs_reads(fleet: Fleet) -> Iterator[dict[str, list[Any]]]:
    """What ClassifyFailure asked ECS for: every ListTasks request and every task ARN it described."""
    seen: dict[str, list[Any]] = {"list_tasks": [], "described": []}

    def listed(params: dict[str, Any], **_: Any) -> None:
        seen["list_tasks"].append(params)

    def described(params: dict[str, Any], **_: Any) -> None:
        seen["described"] += params["tasks"]

    boto3.setup_default_session(region_name=REGION)
    assert boto3.DEFAULT_SESSION is not None
    events = boto3.DEFAULT_SESSION.events
    hooks = {"provide-client-params.ecs.ListTasks": listed, "provide-client-params.ecs.DescribeTasks": described}
    for name, hook in hooks.items():
        events.register(name, hook)
    yield seen
    for name, hook in hooks.items():
        events.unregister(name, hook)


def classify(fleet: Fleet) -> dict[str, Any]:
    return classify_failure.handler({"request": fleet.event(), "execution": execution()}, FakeLambdaContext())


def test_tasks_of_other_families_are_never_listed_or_described(fleet: Fleet, ecs_reads: dict[str, list[Any]]) -> None:
    notebook = _start(fleet, _definition("notebook"), "job-c")
    out = classify(fleet)
    assert out["job"]["tasks"] == [task_id(fleet.event()["detail"]["taskArn"]), task_id(fleet.sibling)]
    assert notebook not in ecs_reads["described"]
    assert ecs_reads["list_tasks"]
    assert all(request["family"] == "llm-train" for request in ecs_reads["list_tasks"])


def test_a_family_the_job_ran_before_is_searched_too(fleet: Fleet) -> None:
    evaluation = _definition("llm-eval")
    earlier = _start(fleet, evaluation, "job-a")
    _stop(fleet, earlier)
    _record(earlier, evaluation, restartedAs="replaced")
    evaluator = _start(fleet, evaluation, "job-a")
    out = classify(fleet)
    assert set(out["job"]["tasks"]) == {
        task_id(a) for a in (fleet.event()["detail"]["taskArn"], fleet.sibling, evaluator)
    }


def test_stopped_tasks_of_the_incident_join_unless_an_earlier_recovery_restarted_them(fleet: Fleet) -> None:
    restarted, crashed = (
        _start(fleet, fleet.train_task_definition, "job-a"),
        _start(fleet, fleet.train_task_definition, "job-a"),
    )
    for arn in (restarted, crashed):
        _stop(fleet, arn)
    _record(restarted, fleet.train_task_definition, restartedAs="its-replacement")
    out = classify(fleet)
    assert set(out["job"]["tasks"]) == {
        task_id(a) for a in (fleet.event()["detail"]["taskArn"], fleet.sibling, crashed)
    }
    assert out["job"]["survivingTasks"] == [task_id(fleet.sibling)]
