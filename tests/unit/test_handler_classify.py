"""ClassifyFailure against moto: tables, ECS cluster, DescribeTasks."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import classify_failure
import pytest
from classify_failure import task_id
from unit_helpers import (
    CLUSTER,
    EXECUTION_ARN,
    JOB_TABLE,
    OTHER_EXECUTION_ARN,
    TASK_TABLE,
    FakeLambdaContext,
    Fleet,
    all_items,
    execution,
    load_event,
    scan,
)

from recovery.ecs_task import EcsTask
from recovery.models import InvalidInput, JobTooLarge
from recovery.settings import get_settings

EMPTY: dict[str, list[Any]] = {"ecs_task": [], "ecs_job": [], "ecs_node": []}


def classify(request: Any, context: FakeLambdaContext, arn: str = EXECUTION_ARN) -> dict[str, Any]:
    return classify_failure.handler({"request": request, "execution": execution(arn)}, context)


def test_recover_records_task_and_job(fleet: Fleet, context: FakeLambdaContext) -> None:
    event = fleet.event()
    out = classify(event, context)
    assert out["decision"] == "RECOVER"
    assert out["dryRun"] is False
    assert out["settings"]["diagLevel"] == "2"
    assert out["failure"]["taskArn"] == event["detail"]["taskArn"]
    assert out["failure"]["ec2InstanceId"] == fleet.instance_ids[0]
    assert out["failure"]["exitCode"] == 1
    assert out["failure"]["gpuIds"] == event["detail"]["containers"][0]["gpuIds"]
    job = out["job"]
    assert job["jobId"] == "job-a"
    assert job["tasks"] == [task_id(event["detail"]["taskArn"]), task_id(fleet.sibling)]
    assert job["survivingTasks"] == [task_id(fleet.sibling)]
    assert job["nodes"] == [
        {
            "ec2InstanceId": fleet.instance_ids[i],
            "containerInstanceArn": fleet.container_instances[i],
            "instanceType": "p4d.24xlarge",  # ECS's ecs.instance-type attribute: picks the reboot timeout
        }
        for i in (0, 1)
    ]
    tasks = {t["taskArn"]: t for t in scan(TASK_TABLE)}
    failed = tasks[event["detail"]["taskArn"]]
    assert failed["recoveryExecution"] == EXECUTION_ARN
    assert failed["recoveryStatus"] == "RECOVERING"
    assert failed["lastEventVersion"] == 5
    assert failed["jobId"] == "job-a"
    assert failed["overrides"] == event["detail"]["overrides"]
    assert failed["ec2InstanceId"] == fleet.instance_ids[0]
    assert "recoveryExecution" not in tasks[fleet.sibling]
    assert tasks[fleet.sibling]["group"] == "job-a"
    assert fleet.other_job_task not in tasks
    [job_row] = scan(JOB_TABLE)
    assert (job_row["jobId"], job_row["status"], job_row["restartCount"]) == ("job-a", "RUNNING", 0)
    assert job_row["lastFailedTask"] == event["detail"]["taskArn"]


def test_same_event_twice_is_duplicate(fleet: Fleet, context: FakeLambdaContext) -> None:
    classify(fleet.event(), context)
    before = all_items()
    out = classify(fleet.event(), context, OTHER_EXECUTION_ARN)
    assert out["decision"] == "DUPLICATE"
    assert "job" not in out
    assert all_items() == before


def test_a_retry_of_the_same_execution_after_its_write_still_recovers(fleet: Fleet, context: FakeLambdaContext) -> None:
    # The step wrote the task and then died (a crash, or throttling after record_failure): its Retry runs it again.
    first = classify(fleet.event(), context)
    again = classify(fleet.event(), context)
    assert again["decision"] == first["decision"] == "RECOVER"
    assert again["job"] == first["job"]


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("task_stopped_exit0", "EXITED_CLEANLY"),
        ("task_stopped_user_initiated", "STOP_CODE_NOT_GPU"),
        ("task_stopped_service_scheduler", "STOP_CODE_NOT_GPU"),
        ("task_stopped_spot_interruption", "STOP_CODE_NOT_GPU"),
        ("task_stopped_termination_notice", "STOP_CODE_NOT_GPU"),
        ("task_stopped_own_dcgm_check", "OWN_DCGM_TASK"),
        ("task_stopped_no_gpu", "NOT_A_GPU_TASK"),
        ("task_stopped_other_cluster", "NOT_IN_CLUSTER"),
        ("task_running_gpu", "NOT_STOPPED"),
    ],
)
def test_ignore_writes_nothing(fleet: Fleet, context: FakeLambdaContext, fixture: str, reason: str) -> None:
    out = classify(fleet.event(fixture), context)
    assert out["decision"] == "IGNORE"
    assert out["reason"].startswith(reason)
    assert all_items() == EMPTY


def test_a_job_on_more_nodes_than_max_job_nodes_is_refused_before_anything_is_written(
    fleet: Fleet, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_JOB_NODES", "1")
    get_settings.cache_clear()
    with pytest.raises(JobTooLarge, match="job job-a spans 2 nodes, more than MAX_JOB_NODES=1"):
        classify(fleet.event(), context)
    get_settings.cache_clear()
    assert all_items() == EMPTY


def without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda e: without(e, "detail"), "detail"),
        (lambda e: e | {"detail": without(e["detail"], "taskArn")}, "taskArn"),
        (lambda e: e | {"detail": without(e["detail"], "clusterArn")}, "clusterArn"),
        (lambda e: e | {"detail-type": "ECS Container Instance State Change"}, "detail-type"),
        (lambda e: e | {"detail": e["detail"] | {"version": "five"}}, "version"),
        (lambda e: ["not", "an", "object"], "JSON object"),
        (lambda e: {"hello": "world"}, "neither an ECS Task State Change event"),
    ],
)
def test_malformed_event_raises_invalid_input(
    fleet: Fleet, context: FakeLambdaContext, make: Any, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        classify(make(fleet.event()), context)
    assert all_items() == EMPTY


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"taskArn": "4f3c2b1a9d8e7f6a5b4c3d2e1f0a9b8c"}, "not an ECS task ARN"),
        ({"taskArn": "arn:aws:ecs:us-east-1:123456789012:container-instance/gpu-training/abc"}, "not an ECS task ARN"),
        ({"taskArn": 42}, "taskArn"),
        ({"taskArn": "arn:aws:ecs:us-east-1:123456789012:task/gpu-training/abc", "force": True}, "force"),
        (
            {"taskArn": f"arn:aws:ecs:us-east-1:123456789012:task/{CLUSTER}/00000000000000000000000000000000"},
            "not found",
        ),
    ],
)
def test_bad_manual_request_raises_invalid_input(
    fleet: Fleet, context: FakeLambdaContext, request_: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        classify(request_, context)
    assert all_items() == EMPTY


def test_manual_request_describes_the_task(fleet: Fleet, context: FakeLambdaContext) -> None:
    arn = fleet.stopped_task_in_ecs(exit_code=0)  # a manual request overrides the exit-code check
    out = classify({"taskArn": arn, "reason": "ops: rank 3 hung on NCCL", "dryRun": True}, context)
    assert out["decision"] == "RECOVER"
    assert out["dryRun"] is True
    assert out["failure"]["source"] == "manual"
    assert out["failure"]["reason"] == "ops: rank 3 hung on NCCL"
    assert out["job"]["jobId"] == "job-a"
    assert {n["ec2InstanceId"] for n in out["job"]["nodes"]} == set(fleet.instance_ids)
    [row] = [t for t in scan(TASK_TABLE) if t["taskArn"] == arn]
    assert row["recoveryExecution"] == EXECUTION_ARN


def test_dry_run_from_configuration(fleet: Fleet, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRY_RUN", "true")
    classify_failure.get_settings.cache_clear()
    assert classify(fleet.event(), context)["dryRun"] is True


def _rank(name: str, **changes: Any) -> EcsTask:
    detail = load_event("task_stopped_gpu")["detail"]
    arn = detail["taskArn"].rsplit("/", 1)[0] + f"/{name}"
    return EcsTask.model_validate(detail | {"taskArn": arn} | changes)


def test_a_rank_that_had_completed_is_not_part_of_the_incident() -> None:
    failed = _rank("failed")
    finished = _rank("finished", containers=[{"name": "trainer", "exitCode": 0, "gpuIds": ["GPU-1"]}])
    crashed = _rank("crashed")
    running = _rank("running", lastStatus="RUNNING", stopCode=None, stoppedAt=None)
    by_status = {"RUNNING": [running], "STOPPED": [failed, finished, crashed]}
    ecs = SimpleNamespace(family_tasks=lambda families, status: by_status[status])
    tables = SimpleNamespace(job_task_items=lambda job_id: [])
    settings = get_settings()
    others = classify_failure.job_tasks(
        failed, "job-a", settings, ecs, tables, essential=lambda arn: frozenset({"trainer"})
    )  # type: ignore[arg-type]
    assert [t.task_arn.rsplit("/", 1)[-1] for t in others] == ["running", "crashed"]


def test_tasks_in_the_ecs_default_family_group_are_each_a_job_of_one(fleet: Fleet, context: FakeLambdaContext) -> None:
    event = fleet.event()
    event["detail"]["group"] = "family:llm-train"
    out = classify(event, context)
    assert out["decision"] == "RECOVER"
    assert out["job"]["jobId"].startswith("task:")
    assert out["job"]["tasks"] == [task_id(event["detail"]["taskArn"])]
    assert out["job"]["survivingTasks"] == []
