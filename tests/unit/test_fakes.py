"""The fakes keep the real data layer's conditions: each sequence runs against FakeTables and against Tables on
moto's DynamoDB, with the same answers and the same rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fakes import FakeTables
from unit_helpers import EXECUTION_ARN, JOB_TABLE, NODE_TABLE, OTHER_EXECUTION_ARN, TASK_TABLE

from recovery.models import JobStatus, NodeStatus, TaskRecoveryStatus
from recovery.tables import Tables

ME, THEM = EXECUTION_ARN, OTHER_EXECUTION_ARN
NODE, CI = "i-0a1b2c3d4e5f60718", "arn:aws:ecs:us-east-1:123456789012:container-instance/gpu-training/ci-1"
NOW = datetime(2026, 11, 20, 3, 20, tzinfo=UTC)


@pytest.fixture(params=["fake", "dynamodb"])
def tables(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "fake":
        yield FakeTables()
    else:
        request.getfixturevalue("aws")
        yield Tables(TASK_TABLE, JOB_TABLE, NODE_TABLE, 90)


def test_the_node_lock_is_taken_once_kept_by_its_owner_and_taken_over_only_from_the_dead(tables: Any) -> None:
    assert tables.lock_node(NODE, CI, ME, "t1") == (True, None)
    assert tables.lock_node(NODE, CI, ME, "t2") == (True, None)
    refused, row = tables.lock_node(NODE, CI, THEM, "t3")
    assert (refused, row["lockOwner"], row["lockedAt"]) == (False, ME, "t2")
    assert tables.lock_node(NODE, CI, THEM, "t4", dead_owner=ME) == (True, None)
    assert (tables.get_node(NODE)["lockOwner"], tables.get_node(NODE)["lockedAt"]) == (THEM, "t4")
    assert tables.update_node(NODE, THEM, {"status": NodeStatus.QUARANTINED}, release=True)
    refused, row = tables.lock_node(NODE, CI, ME, "t5")
    assert (refused, row["status"]) == (False, "QUARANTINED")
    assert tables.nodes_locked_by(THEM) == []


def test_a_once_per_execution_update_answers_the_row_it_was_refused_on(tables: Any) -> None:
    tables.lock_node(NODE, CI, ME, "t1")
    fields = {"reboots": ["t2"], "lastRebootBy": ME, "status": NodeStatus.REBOOTING}
    assert tables.update_node_once(NODE, ME, fields, marker="lastRebootBy") == (True, None)
    refused, row = tables.update_node_once(NODE, ME, fields | {"reboots": ["t2", "t3"]}, marker="lastRebootBy")
    assert (refused, row["reboots"], row["lockOwner"]) == (False, ["t2"], ME)
    refused, row = tables.update_node_once(NODE, THEM, fields, marker="lastRebootBy")
    assert (refused, row["lockOwner"]) == (False, ME)
    assert tables.update_node_once("i-none", ME, fields, marker="lastRebootBy") == (False, None)
    assert tables.refund_reboot(NODE, ME, "t4")
    assert not tables.refund_reboot(NODE, ME, "t5")
    assert tables.get_node(NODE)["reboots"] == []
    assert [row["nodeId"] for row in tables.nodes_locked_by(ME)] == [NODE]


def test_history_rows_are_read_in_order_per_execution_and_relabelled_in_place(tables: Any) -> None:
    for kind, me, minute in (("DIAGNOSIS", ME, 1), ("REBOOT", ME, 2), ("DIAGNOSIS", THEM, 3)):
        tables.add_history(NODE, kind, me, NOW.replace(minute=minute), {"reason": kind})
    tables.relabel_history(NODE, ME, "REBOOT", "REBOOT_NOT_PERFORMED", {"reason": "denied"})
    rows = tables.history(NODE)
    assert [(r["kind"], r["executionArn"], r["detail"]) for r in rows] == [
        ("DIAGNOSIS", ME, {"reason": "DIAGNOSIS"}),
        ("REBOOT_NOT_PERFORMED", ME, {"reason": "denied"}),
        ("DIAGNOSIS", THEM, {"reason": "DIAGNOSIS"}),
    ]
    assert [r["kind"] for r in tables.history(NODE, THEM)] == ["DIAGNOSIS"]


def seed_job(tables: Any) -> None:
    """A job locked by ME with one recorded task (as ClassifyFailure and LockJob leave it)."""
    if isinstance(tables, FakeTables):
        tables.tasks["t-1"] = {"taskArn": "t-1", "jobId": "job-a", "taskDefinitionArn": "td:1", "recoveryExecution": ME}
        tables.jobs["job-a"] = {"jobId": "job-a", "status": "RECOVERING", "lockOwner": ME}
        return
    task = {"taskArn": "t-1", "jobId": "job-a", "taskDefinitionArn": "td:1", "recoveryExecution": ME}
    tables.task.put_item(Item=task)
    tables.job.put_item(Item={"jobId": "job-a", "status": "RECOVERING", "lockOwner": ME})


def test_a_job_outcome_is_recorded_once_by_the_lock_owner(tables: Any) -> None:
    seed_job(tables)
    outcome = {"outcome": "RESTARTED", "reason": "GPU fault handled", "restarted": 1}
    assert not tables.finish_job("job-a", THEM, status=JobStatus.RUNNING, outcome=outcome, new_tasks={}, now="t1")
    assert tables.finish_job("job-a", ME, status=JobStatus.RUNNING, outcome=outcome, new_tasks={"t-1": "t-2"}, now="t2")
    assert not tables.finish_job(
        "job-a", ME, status=JobStatus.RUNNING, outcome=outcome, new_tasks={"t-1": "t-3"}, now="t3"
    )
    job = tables.get_job("job-a")
    assert (job["restartCount"], job["lastOutcomeDetail"], job["tasks"]) == (1, outcome, ["t-2"])
    assert tables.job_task_items("job-a") == [{"taskArn": "t-1", "taskDefinitionArn": "td:1", "restartedAs": "t-2"}]
    assert tables.jobs_locked_by(ME) == ["job-a"]


def test_an_error_releases_only_the_owners_job_lock_and_marks_only_its_task(tables: Any) -> None:
    seed_job(tables)
    assert not tables.release_job_after_error("job-a", THEM, "t1", "boom")
    assert tables.release_job_after_error("job-a", ME, "t2", "boom")
    job = tables.get_job("job-a")
    assert (job["status"], job["lastReason"], "lockOwner" in job) == ("ERROR", "boom", False)
    assert tables.jobs_locked_by(ME) == []
    assert not tables.mark_task("t-1", TaskRecoveryStatus.ERROR, "t3", handled_by=THEM)
    assert not tables.mark_task("t-none", TaskRecoveryStatus.ERROR, "t3")
    assert tables.mark_task("t-1", TaskRecoveryStatus.ERROR, "t4", handled_by=ME)
    assert tables.get_task("t-1")["recoveryStatus"] == "ERROR"
