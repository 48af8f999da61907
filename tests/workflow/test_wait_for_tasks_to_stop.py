"""WaitForTasksToStop: the definition's own poll loop, on the local engine against moto ECS. The job's tasks are
described in batches of at most 100 (DescribeTasks' limit) until all are STOPPED, a bounded number of times."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ecs.models import ecs_backends

from gpu_recovery.clock import SimClock
from gpu_recovery.engine import LocalEngine
from infra.workflow import DEFINITION_FILE
from tests.workflow.engine.engine_harness import ecs_cluster, ecs_tasks_never_stop, run

pytestmark = pytest.mark.slow

LOOP = ("WaitForTasksToStop", "PollTasksStopped", "DescribeStoppingTasks", "CountStoppedTasks", "AreTasksStillStopping")
MAX_POLLS = 3


def loop_machine() -> dict[str, Any]:
    """The loop's states as the definition has them; what follows them ends the run."""
    states = json.loads(DEFINITION_FILE.read_text())["States"]
    return {
        "StartAt": LOOP[0],
        "States": {name: states[name] for name in LOOP}
        | {"CheckNodes": {"Type": "Succeed"}, "HandleError": {"Type": "Fail", "Error": "HandleError"}},
    }


@pytest.fixture
def engine() -> Iterator[LocalEngine]:
    with LocalEngine(SimClock()) as local:
        yield local


def start_tasks(cluster: dict[str, str], count: int) -> list[str]:
    ecs = boto3.client("ecs")
    return [
        ecs.start_task(
            cluster="gpu", taskDefinition=cluster["task_definition"], containerInstances=[cluster["container_instance"]]
        )["tasks"][0]["taskArn"]
        for _ in range(count)
    ]


def polls(engine: LocalEngine, execution: dict[str, Any]) -> list[int]:
    """How many tasks each DescribeTasks call asked about, in order."""
    return [
        len(json.loads(e["taskScheduledEventDetails"]["parameters"])["Tasks"])
        for e in engine.history(execution["executionArn"])
        if e.get("taskScheduledEventDetails", {}).get("resource") == "describeTasks"
    ]


def execute(engine: LocalEngine, tmp_path: Path, cluster: dict[str, str], tasks: list[str]) -> dict[str, Any]:
    return run(
        engine,
        tmp_path,
        loop_machine(),
        {
            "job": {"survivingTasks": tasks},
            "settings": {"taskStopPollSeconds": 10, "taskStopPollMaxAttempts": MAX_POLLS},
        },
        substitutions={"Partition": "aws", "ClusterArn": cluster["cluster"]},
    )


def test_stopped_tasks_are_polled_once_in_batches_of_100(engine: LocalEngine, tmp_path: Path) -> None:
    cluster = ecs_cluster()
    with ecs_tasks_never_stop():
        tasks = start_tasks(cluster, 150)
        for task in ecs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tasks["gpu"].values():
            task.status = "STOPPED"
        execution = execute(engine, tmp_path, cluster, tasks)
    assert execution["status"] == "SUCCEEDED"
    assert polls(engine, execution) == [100, 50]


def test_tasks_that_do_not_stop_are_polled_a_bounded_number_of_times(engine: LocalEngine, tmp_path: Path) -> None:
    cluster = ecs_cluster()
    with ecs_tasks_never_stop():
        tasks = start_tasks(cluster, 2)
        execution = execute(engine, tmp_path, cluster, tasks)
    assert execution["status"] == "SUCCEEDED"  # on to CheckNodes: a check that cannot be placed is INCONCLUSIVE
    assert polls(engine, execution) == [2] * MAX_POLLS
