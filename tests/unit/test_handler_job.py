"""RestartJob and HandleError against moto."""

from __future__ import annotations

import json
from typing import Any

import acquire_node
import boto3
import classify_failure
import handle_error
import pytest
import restart_job
from classify_failure import task_id
from unit_helpers import (
    CLUSTER,
    EXECUTION_ARN,
    JOB_TABLE,
    NODE_TABLE,
    OTHER_EXECUTION_ARN,
    REGION,
    TASK_TABLE,
    FakeLambdaContext,
    Fleet,
    execution,
    scan,
)


def recovering(fleet: Fleet, context: FakeLambdaContext) -> dict[str, Any]:
    """ClassifyFailure, then LockJob as the ASL writes it."""
    out = classify_failure.handler({"request": fleet.event(), "execution": execution()}, context)
    boto3.resource("dynamodb", region_name=REGION).Table(JOB_TABLE).update_item(
        Key={"jobId": "job-a"},
        UpdateExpression="SET #status = :recovering, lockOwner = :me, lockedAt = :now",
        ConditionExpression="attribute_not_exists(lockOwner) OR lockOwner = :me",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":recovering": "RECOVERING", ":me": EXECUTION_ARN, ":now": "2026-11-20T03:15Z"},
    )
    return out


def job_request(classified: dict[str, Any], outcomes: list[str], dry_run: bool = False) -> dict[str, Any]:
    nodes = classified["job"]["nodes"]
    return {
        "job": classified["job"],
        "failure": classified["failure"],
        "nodeResults": [
            {"nodeId": n["ec2InstanceId"], "outcome": o, "reason": f"test {o}"}
            for n, o in zip(nodes, outcomes, strict=True)
        ],
        "dryRun": dry_run,
        "settings": classified["settings"],
        "execution": execution(),
    }


def job() -> dict[str, Any]:
    [row] = scan(JOB_TABLE)
    return row


def ecs_task_arns() -> set[str]:
    ecs = boto3.client("ecs", region_name=REGION)
    return set(ecs.list_tasks(cluster=CLUSTER)["taskArns"])


def restarted_as() -> dict[str, str]:
    """The new task of each restarted task, as the task table records it (not in the step's output)."""
    return {t["taskArn"]: t["restartedAs"] for t in scan(TASK_TABLE) if "restartedAs" in t}


def test_restart_after_repair(fleet: Fleet, context: FakeLambdaContext) -> None:
    classified = recovering(fleet, context)
    before = ecs_task_arns()
    out = restart_job.handler(job_request(classified, ["REPAIRED", "HEALTHY"]), context)
    assert out["outcome"] == "RESTARTED"
    failed = classified["failure"]["taskArn"]
    new_tasks = restarted_as()
    assert set(new_tasks) == {failed, fleet.sibling}
    assert set(new_tasks.values()) == ecs_task_arns() - before
    assert out["restarted"] == 2
    ecs = boto3.client("ecs", region_name=REGION)
    described = ecs.describe_tasks(cluster=CLUSTER, tasks=list(new_tasks.values()))["tasks"]
    overrides = fleet.event()["detail"]["overrides"]
    for task in described:
        assert task["taskDefinitionArn"] == fleet.train_task_definition
        assert task["group"] == "job-a"
        assert task["startedBy"] == "airflow/llm-train"
        assert task["overrides"]["containerOverrides"] == overrides["containerOverrides"]
    row = job()
    assert (row["status"], row["restartCount"], row["lastOutcome"]) == ("RUNNING", 1, "RESTARTED")
    tasks = {t["taskArn"]: t for t in scan(TASK_TABLE)}
    assert tasks[failed]["recoveryStatus"] == "RESTARTED"
    body = json.loads(json.loads(out["notification"]["message"])["default"])
    assert body["restartedTasks"] == 2
    assert out["notification"]["subject"].startswith("[GPU Recovery] job-a RESTARTED")


def test_restart_counted_once_when_handler_runs_twice(fleet: Fleet, context: FakeLambdaContext) -> None:
    classified = recovering(fleet, context)
    restart_job.handler(job_request(classified, ["REPAIRED", "HEALTHY"]), context)
    restart_job.handler(job_request(classified, ["REPAIRED", "HEALTHY"]), context)
    assert job()["restartCount"] == 1


def test_retried_restart_returns_the_same_outcome(
    fleet: Fleet, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_RESTARTS_PER_JOB", "1")
    classified = recovering(fleet, context)
    first = restart_job.handler(job_request(classified, ["REPAIRED", "HEALTHY"]), context)
    retry = restart_job.handler(job_request(classified, ["REPAIRED", "HEALTHY"]), context)
    assert first["outcome"] == "RESTARTED"
    assert retry["outcome"] == first["outcome"]


def test_all_healthy_fails_without_run_task(fleet: Fleet, context: FakeLambdaContext) -> None:
    classified = recovering(fleet, context)
    before = ecs_task_arns()
    out = restart_job.handler(job_request(classified, ["HEALTHY", "HEALTHY"]), context)
    assert out["outcome"] == "FAILED"
    assert "application" in out["reason"]
    assert out["restarted"] == 0
    assert restarted_as() == {}
    assert ecs_task_arns() == before
    assert (job()["status"], job()["restartCount"]) == ("FAILED", 0)


def test_budget_exhausted_fails(fleet: Fleet, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_RESTARTS_PER_JOB", "0")
    classified = recovering(fleet, context)
    before = ecs_task_arns()
    out = restart_job.handler(job_request(classified, ["REPAIRED", "HEALTHY"]), context)
    assert out["outcome"] == "FAILED"
    assert "budget exhausted" in out["reason"]
    assert ecs_task_arns() == before
    assert job()["status"] == "FAILED"


def test_dry_run_starts_nothing(fleet: Fleet, context: FakeLambdaContext) -> None:
    classified = recovering(fleet, context)
    before = ecs_task_arns()
    out = restart_job.handler(job_request(classified, ["DRY_RUN", "HEALTHY"], dry_run=True), context)
    assert out["dryRun"] is True
    assert out["reason"].startswith("dry run: would be")
    assert ecs_task_arns() == before
    assert job()["status"] == "RUNNING"
    assert "DRY RUN" in out["notification"]["subject"]


# ---- HandleError ----------------------------------------------------------------------------------
def test_handle_error_releases_only_own_locks(fleet: Fleet, context: FakeLambdaContext) -> None:
    classified = recovering(fleet, context)
    nodes = classified["job"]["nodes"]
    for node, owner in zip(nodes, (EXECUTION_ARN, OTHER_EXECUTION_ARN), strict=True):
        acquire_node.handler(
            {
                "node": node,
                "jobId": "job-a",
                "failure": classified["failure"],
                "dryRun": False,
                "execution": execution(owner),
            },
            context,
        )
    error = {"Error": "States.TaskFailed", "Cause": "ECS.AccessDeniedException: not authorized to RebootInstances"}
    state = classified | {"error": error}
    out = handle_error.handler({"state": state, "execution": execution()}, context)
    mine, theirs = nodes[0]["ec2InstanceId"], nodes[1]["ec2InstanceId"]
    assert out["releasedJob"] is True
    assert out["releasedNodes"] == [mine]
    row = job()
    assert row["status"] == "ERROR"
    assert "lockOwner" not in row
    states = {i["nodeId"]: i for i in scan(NODE_TABLE) if i["recordKey"] == "STATE"}
    assert "lockOwner" not in states[mine]
    assert states[mine]["status"] == "SUSPECT"
    assert states[theirs]["lockOwner"] == OTHER_EXECUTION_ARN
    assert states[theirs]["status"] == "CHECKING"
    errors = [i for i in scan(NODE_TABLE) if i["recordKey"].startswith("HISTORY#")]
    assert [(e["nodeId"], e["kind"]) for e in errors] == [(mine, "ERROR")]
    tasks = {t["taskArn"]: t for t in scan(TASK_TABLE)}
    assert tasks[classified["failure"]["taskArn"]]["recoveryStatus"] == "ERROR"
    assert "States.TaskFailed" in out["notification"]["subject"]
    assert json.loads(json.loads(out["notification"]["message"])["default"])["error"] == "States.TaskFailed"


def test_handle_error_before_classification(aws: None, context: FakeLambdaContext) -> None:
    state = {"taskArn": "x", "error": {"Error": "Lambda.Unknown", "Cause": "timeout"}}
    out = handle_error.handler({"state": state, "execution": execution()}, context)
    assert out["releasedJob"] is False
    assert out["releasedNodes"] == []
    assert out["notification"]["subject"] == "[GPU Recovery] ERROR unknown job: Lambda.Unknown"


def test_tag_job_key_reads_tags_before_anything_stops_and_restart_keeps_them(
    fleet: Fleet, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOB_KEY", "tag:training-job")
    ecs = boto3.client("ecs", region_name=REGION)
    failed = fleet.stopped_task_in_ecs()
    tags = [{"key": "team", "value": "research"}, {"key": "training-job", "value": "llm-7b"}]
    for arn in (failed, fleet.sibling):
        ecs.tag_resource(resourceArn=arn, tags=tags)
    ecs.tag_resource(resourceArn=fleet.other_job_task, tags=[{"key": "training-job", "value": "other"}])
    event = fleet.event()
    event["detail"]["taskArn"] = failed  # the event carries no tags
    classified = classify_failure.handler({"request": event, "execution": execution()}, context)
    assert classified["job"]["jobId"] == "llm-7b"
    assert set(classified["job"]["tasks"]) == {task_id(failed), task_id(fleet.sibling)}
    boto3.resource("dynamodb", region_name=REGION).Table(JOB_TABLE).update_item(
        Key={"jobId": "llm-7b"},
        UpdateExpression="SET lockOwner = :me",
        ExpressionAttributeValues={":me": EXECUTION_ARN},
    )
    for arn in (failed, fleet.sibling):
        ecs.stop_task(cluster=CLUSTER, task=arn)  # StopJobTasks: ECS deletes a stopped task's tags
    out = restart_job.handler(job_request(classified, ["REPAIRED", "HEALTHY"]), context)
    assert out["outcome"] == "RESTARTED"
    described = ecs.describe_tasks(cluster=CLUSTER, tasks=list(restarted_as().values()), include=["TAGS"])["tasks"]
    assert len(described) == 2
    for task in described:
        assert sorted(task["tags"], key=lambda t: t["key"]) == tags


def test_one_task_that_cannot_start_does_not_stop_the_others(fleet: Fleet, context: FakeLambdaContext) -> None:
    classified = recovering(fleet, context)
    boto3.resource("dynamodb", region_name=REGION).Table(TASK_TABLE).update_item(
        Key={"taskArn": fleet.sibling},
        UpdateExpression="SET taskDefinitionArn = :gone",
        ExpressionAttributeValues={":gone": "arn:aws:ecs:us-east-1:123456789012:task-definition/deregistered:1"},
    )
    out = restart_job.handler(job_request(classified, ["REPAIRED", "HEALTHY"]), context)
    assert out["outcome"] == "RESTARTED"
    assert set(restarted_as()) == {classified["failure"]["taskArn"]}
    assert "could not start 1 task(s)" in out["reason"]
    assert fleet.sibling.rsplit("/", 1)[-1] in out["reason"]


def join_late(task_arn: str) -> None:
    """A task of the job joins the recovery as JoinExistingRecovery writes it (job row, conditional on the owner)."""
    boto3.resource("dynamodb", region_name=REGION).Table(JOB_TABLE).update_item(
        Key={"jobId": "job-a"},
        UpdateExpression="SET joinedTasks = list_append(if_not_exists(joinedTasks, :none), :task) ADD joins :one",
        ConditionExpression="lockOwner = :owner",
        ExpressionAttributeValues={":none": [], ":task": [task_arn], ":one": 1, ":owner": EXECUTION_ARN},
    )


def late_task(fleet: Fleet) -> str:
    """A recorded task of the job that RestartJob never saw (a copy of the sibling's launch record)."""
    table = boto3.resource("dynamodb", region_name=REGION).Table(TASK_TABLE)
    record = table.get_item(Key={"taskArn": fleet.sibling})["Item"]
    late = fleet.sibling[:-4] + "late"
    table.put_item(Item={k: v for k, v in record.items() if k != "restartedAs"} | {"taskArn": late})
    return late


def test_tasks_that_joined_before_the_decision_are_restarted_with_the_job(
    fleet: Fleet, context: FakeLambdaContext
) -> None:
    classified = recovering(fleet, context)
    late = late_task(fleet)
    join_late(late)
    out = restart_job.handler(job_request(classified, ["REPAIRED", "HEALTHY"]), context)
    assert restarted_as()[late] in ecs_task_arns()
    assert out["joinsSeen"] == 1  # ReleaseJob releases only if no join came after this


def test_tasks_that_joined_after_the_decision_are_restarted_by_the_late_round(
    fleet: Fleet, context: FakeLambdaContext
) -> None:
    classified = recovering(fleet, context)
    request = job_request(classified, ["REPAIRED", "HEALTHY"])
    out = restart_job.handler(request, context)
    assert out["joinsSeen"] == 0
    late = late_task(fleet)
    join_late(late)  # after RestartJob read the job: ReleaseJob's condition fails, RestartLateJoiners runs
    before = ecs_task_arns()
    again = restart_job.handler(request | {"outcome": out}, context)
    assert again["restarted"] == out["restarted"] + 1
    assert {restarted_as()[late]} == ecs_task_arns() - before
    assert (again["joinsSeen"], again["lateJoinRounds"]) == (1, 1)
    assert "1 task(s) joined after the job was decided (RESTARTED): restarted 1" in again["notification"]["message"]
    # A retry of the round starts nothing twice.
    restart_job.handler(request | {"outcome": out}, context)
    assert ecs_task_arns() - before == {restarted_as()[late]}


def test_tasks_that_joined_a_failed_job_are_named_not_restarted(fleet: Fleet, context: FakeLambdaContext) -> None:
    classified = recovering(fleet, context)
    request = job_request(classified, ["HEALTHY", "HEALTHY"])
    out = restart_job.handler(request, context)
    assert out["outcome"] == "FAILED"
    late = late_task(fleet)
    join_late(late)
    again = restart_job.handler(request | {"outcome": out}, context)
    assert again["restarted"] == 0
    assert late not in restarted_as()
    assert late in again["notification"]["message"]
