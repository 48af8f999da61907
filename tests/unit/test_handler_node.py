"""LockNode (acquire_node), AnalyzeDiag and the node records (record_node_state) against moto."""

from __future__ import annotations

import json
import time
from typing import Any

import acquire_node
import analyze_diag
import boto3
import pytest
import record_node_state
from unit_helpers import (
    CLUSTER,
    DCGM_CONTAINER,
    DCGM_LOG_GROUP,
    DCGM_STREAM_PREFIX,
    EXECUTION_ARN,
    NODE_TABLE,
    OTHER_EXECUTION_ARN,
    REGION,
    FakeLambdaContext,
    Fleet,
    execution,
    scan,
)

from recovery.aws import StepFunctions

NODE_ID = "i-0a1b2c3d4e5f60718"
CI_ARN = "arn:aws:ecs:us-east-1:123456789012:container-instance/gpu-training/8d0f1e2c3b4a59687766554433221100"
TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/gpu-training/4f3c2b1a9d8e7f6a5b4c3d2e1f0a9b8c"


def step(arn: str = EXECUTION_ARN, node: str = NODE_ID, **extra: Any) -> dict[str, Any]:
    """The payload the ASL's node states send (LockNode / AnalyzeDiag / Record* Parameters)."""
    return {
        "node": {"ec2InstanceId": node, "containerInstanceArn": CI_ARN},
        "jobId": "job-a",
        "failure": {
            "taskArn": TASK_ARN,
            "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/gpu-training",
            "source": "event",
            "reason": "ECS event version 5",
            "stoppedAt": "2026-11-20T03:14:27.391000+00:00",
            "version": 5,
        },
        "dryRun": False,
        "settings": {"diagLevel": "2"},
        "execution": execution(arn),
        **extra,
    }


def state(node: str = NODE_ID) -> dict[str, Any]:
    return next(i for i in scan(NODE_TABLE) if i["nodeId"] == node and i["recordKey"] == "STATE")


def history(node: str = NODE_ID) -> list[dict[str, Any]]:
    return [i for i in scan(NODE_TABLE) if i["nodeId"] == node and i["recordKey"].startswith("HISTORY#")]


def analysis(next_step: str, status: str = "UNHEALTHY", action: str = "REBOOT") -> dict[str, Any]:
    return {
        "verdict": {"status": status, "action": action, "reasons": ["DCGM check failed with exit 1"]},
        "next": next_step,
        "reason": f"test: {next_step}",
    }


# ---- LockNode -------------------------------------------------------------------------------------
def test_acquire_then_other_waits_then_busy(
    aws: None, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NODE_LOCK_MAX_WAITS", "2")
    monkeypatch.setattr(StepFunctions, "is_running", lambda self, arn: True)
    mine = acquire_node.handler(step(lockWaits=0), context)
    assert mine == {"outcome": "ACQUIRED", "lockWaits": 0, "rebootsInWindow": 0}
    assert state()["lockOwner"] == EXECUTION_ARN
    assert state()["status"] == "CHECKING"
    first = acquire_node.handler(step(OTHER_EXECUTION_ARN, lockWaits=0), context)
    assert (first["outcome"], first["lockWaits"]) == ("WAIT", 1)
    second = acquire_node.handler(step(OTHER_EXECUTION_ARN, lockWaits=1), context)
    assert (second["outcome"], second["lockWaits"]) == ("WAIT", 2)
    busy = acquire_node.handler(step(OTHER_EXECUTION_ARN, lockWaits=2), context)
    assert busy["outcome"] == "DONE"
    assert busy["result"]["outcome"] == "BUSY"
    assert busy["result"]["handledBy"] == EXECUTION_ARN
    assert busy["result"]["containerInstanceArn"] == CI_ARN
    assert state()["lockOwner"] == EXECUTION_ARN


def test_lock_of_an_execution_that_no_longer_runs_is_taken_over(aws: None, context: FakeLambdaContext) -> None:
    acquire_node.handler(step(lockWaits=0), context)
    # EXECUTION_ARN does not exist in Step Functions (aborted, or its history expired): it holds nothing.
    taken = acquire_node.handler(step(OTHER_EXECUTION_ARN, lockWaits=0), context)
    assert taken["outcome"] == "ACQUIRED"
    assert state()["lockOwner"] == OTHER_EXECUTION_ARN
    (row,) = history()
    assert row["kind"] == "LOCK_TAKEN_OVER"
    assert EXECUTION_ARN in row["detail"]["reason"]


def test_acquire_quarantined_node_is_done(aws: None, context: FakeLambdaContext) -> None:
    table = boto3.resource("dynamodb", region_name=REGION).Table(NODE_TABLE)
    table.put_item(
        Item={
            "nodeId": NODE_ID,
            "recordKey": "STATE",
            "status": "QUARANTINED",
            "reason": "DCGM says the GPU must be replaced",
            "updatedAt": "2026-11-19T10:00:00+00:00",
        }
    )
    out = acquire_node.handler(step(), context)
    assert out["outcome"] == "DONE"
    assert out["result"]["outcome"] == "QUARANTINED"
    assert "must be replaced" in out["result"]["reason"]
    assert "lockOwner" not in state()


def test_acquire_reports_reboots_in_window(aws: None, context: FakeLambdaContext) -> None:
    acquire_node.handler(step(), context)
    record_node_state.handler(step(action="REBOOTING", analysis=analysis("REBOOT")), context)
    release = step(action="RELEASE", analysis=analysis("RELEASE_REPAIRED", "HEALTHY", "NONE"))
    release["checkPlan"] = {"phase": "AFTER_REBOOT", "inconclusiveChecks": 0}
    record_node_state.handler(release, context)
    later = step(OTHER_EXECUTION_ARN)
    later["failure"]["stoppedAt"] = "2099-01-01T00:00:00+00:00"  # a failure after the last check
    assert acquire_node.handler(later, context)["rebootsInWindow"] == 1


def under_repair(container_instance_arn: str) -> bool:
    ecs = boto3.client("ecs", region_name=REGION)
    [ci] = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[container_instance_arn])[
        "containerInstances"
    ]
    return any(a["name"] == "gpu-recovery.under-repair" for a in ci.get("attributes", []))


@pytest.mark.parametrize(("action", "marked_after"), [("RELEASE", False), ("QUARANTINE", True), ("SUSPECT", True)])
def test_a_locked_node_is_marked_under_repair_until_released_verified(
    fleet: Fleet, context: FakeLambdaContext, action: str, marked_after: bool
) -> None:
    node, ci = fleet.instance_ids[0], fleet.container_instances[0]
    locked = step(node=node)
    locked["node"]["containerInstanceArn"] = ci
    assert not under_repair(ci)
    acquire_node.handler(locked, context)
    assert under_repair(ci)
    assert not under_repair(fleet.container_instances[1])
    record_node_state.handler(
        locked | {"action": action, "analysis": analysis("RELEASE_REPAIRED", "HEALTHY", "NONE")}, context
    )
    # A quarantined or suspect node keeps the mark (and is drained) until an operator releases it.
    assert under_repair(ci) is marked_after


def test_a_dry_run_marks_nothing(fleet: Fleet, context: FakeLambdaContext) -> None:
    locked = step(node=fleet.instance_ids[0], dryRun=True)
    locked["node"]["containerInstanceArn"] = fleet.container_instances[0]
    acquire_node.handler(locked, context)
    assert not under_repair(fleet.container_instances[0])


# ---- AnalyzeDiag ----------------------------------------------------------------------------------
def put_log(task_arn: str, lines: list[str]) -> str:
    logs = boto3.client("logs", region_name=REGION)
    stream = f"{DCGM_STREAM_PREFIX}/{DCGM_CONTAINER}/{task_arn.rsplit('/', 1)[-1]}"
    logs.create_log_stream(logGroupName=DCGM_LOG_GROUP, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=DCGM_LOG_GROUP,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
    )
    return stream


def check_result(fleet: Fleet, exit_code: int) -> dict[str, Any]:
    task_arn = "arn:aws:ecs:us-east-1:123456789012:task/gpu-training/5b0e1c2d3f4a59687766554433221100"
    return {
        "task": {
            "TaskArn": task_arn,
            "TaskDefinitionArn": fleet.dcgm_task_definition,
            "LastStatus": "STOPPED",
            "StopCode": "EssentialContainerExited",
            "Containers": [{"Name": DCGM_CONTAINER, "ExitCode": exit_code, "LastStatus": "STOPPED"}],
        }
    }


FAILING_DCGMI = {
    "DCGM Diagnostic": {
        "test_categories": [
            {
                "category": "Hardware",
                "tests": [
                    {
                        "name": "memory",
                        "results": [
                            {
                                "entity_id": 2,
                                "status": "Fail",
                                "warnings": [
                                    {
                                        "warning": "GPU 2 row remap failure",
                                        "error_id": 1,
                                        "error_category": 1,
                                        "error_severity": 2,
                                    }
                                ],
                            }
                        ],
                    }
                ],
            }
        ]
    }
}


@pytest.mark.parametrize(
    ("exit_code", "dcgmi", "status", "next_step"),
    [
        (0, {"DCGM Diagnostic": {"test_categories": []}}, "HEALTHY", "RELEASE"),
        (1, FAILING_DCGMI, "UNHEALTHY", "REBOOT"),
        (205, FAILING_DCGMI, "UNHEALTHY", "QUARANTINE"),
    ],
)
def test_analyze_reads_the_awslogs_stream(
    fleet: Fleet, context: FakeLambdaContext, *, exit_code: int, dcgmi: dict[str, Any], status: str, next_step: str
) -> None:
    node = fleet.instance_ids[0]
    acquire_node.handler(step(node=node), context)
    check = check_result(fleet, exit_code)
    put_log(
        check["task"]["TaskArn"],
        ["dcgm-check: level 2 on 8 GPUs", "GPU_RECOVERY_RESULT " + json.dumps({"dcgmi": dcgmi}), "done"],
    )
    out = analyze_diag.handler(step(node=node, check=check, rebootsInWindow=0), context)
    assert out["verdict"]["status"] == status
    assert out["verdict"]["exitCode"] == exit_code
    assert out["next"] == next_step
    row = state(node)
    assert row["lastVerdict"]["status"] == status
    assert row["lastCheckedBy"] == EXECUTION_ARN
    [diag] = history(node)
    assert diag["kind"] == "DIAGNOSIS"
    assert diag["detail"]["next"] == next_step
    assert diag["executionArn"] == EXECUTION_ARN
    assert int(diag["expiresAt"]) > time.time() + 89 * 86400


def test_analyze_without_log_stream_is_not_healthy(
    fleet: Fleet, context: FakeLambdaContext, sleeps: list[float]
) -> None:
    node = fleet.instance_ids[0]
    acquire_node.handler(step(node=node), context)
    out = analyze_diag.handler(step(node=node, check=check_result(fleet, 0)), context)
    assert out["verdict"]["status"] == "INCONCLUSIVE"
    assert out["next"] == "RECHECK"
    # It looked again for a short while before giving up: awslogs delivers after the task stopped.
    assert sleeps == [analyze_diag.LOG_READ_INTERVAL_SECONDS] * (analyze_diag.LOG_READ_ATTEMPTS - 1)


def test_analyze_waits_for_a_result_line_that_arrives_late(
    fleet: Fleet, context: FakeLambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = fleet.instance_ids[0]
    acquire_node.handler(step(node=node), context)
    check = check_result(fleet, 1)
    stream = put_log(check["task"]["TaskArn"], ["dcgm-check: level 2 on 8 GPUs"])

    def late_delivery(seconds: float) -> None:
        boto3.client("logs", region_name=REGION).put_log_events(
            logGroupName=DCGM_LOG_GROUP,
            logStreamName=stream,
            logEvents=[{"timestamp": int(time.time() * 1000) + 10, "message": "GPU_RECOVERY_RESULT "
                        + json.dumps({"dcgmi": FAILING_DCGMI})}],
        )  # fmt: skip

    monkeypatch.setattr(analyze_diag.clock, "sleep", late_delivery)
    out = analyze_diag.handler(step(node=node, check=check, rebootsInWindow=0), context)
    assert (out["verdict"]["status"], out["next"]) == ("UNHEALTHY", "REBOOT")


def test_analyze_placement_failure(fleet: Fleet, context: FakeLambdaContext) -> None:
    node = fleet.instance_ids[0]
    acquire_node.handler(step(node=node), context)
    check = {"Error": "States.Timeout", "Cause": "The task timed out"}
    out = analyze_diag.handler(step(node=node, check=check, checkPlan={"inconclusiveChecks": 1}), context)
    assert (out["verdict"]["status"], out["next"]) == ("INCONCLUSIVE", "SUSPECT")


def test_analyze_dry_run(fleet: Fleet, context: FakeLambdaContext) -> None:
    node = fleet.instance_ids[0]
    acquire_node.handler(step(node=node), context)
    check = check_result(fleet, 1)
    put_log(check["task"]["TaskArn"], [json.dumps(FAILING_DCGMI)])
    out = analyze_diag.handler(step(node=node, check=check, dryRun=True), context)
    assert out["next"] == "DRY_RUN"
    assert out["verdict"]["findings"][0]["gpu"] == 2


# ---- record_node_state ----------------------------------------------------------------------------
def test_reboot_counted_once_per_execution(aws: None, context: FakeLambdaContext) -> None:
    acquire_node.handler(step(), context)
    first = record_node_state.handler(step(action="REBOOTING", analysis=analysis("REBOOT")), context)
    retry = record_node_state.handler(step(action="REBOOTING", analysis=analysis("REBOOT")), context)
    # The wait after the reboot times out after the node's instance type's reboot timeout (the default here).
    timeout = {"agentTimeoutSeconds": 1200}
    assert (first, retry) == ({"counted": True, "owned": True} | timeout, {"counted": False, "owned": True} | timeout)
    row = state()
    assert len(row["reboots"]) == 1
    assert row["status"] == "REBOOTING"
    assert row["lastRebootBy"] == EXECUTION_ARN
    assert [h["kind"] for h in history()] == ["REBOOT"]


def test_a_refused_reboot_count_reads_the_row_from_the_refusal(aws: None, context: FakeLambdaContext) -> None:
    acquire_node.handler(step(), context)
    record_node_state.handler(step(action="REBOOTING", analysis=analysis("REBOOT")), context)
    reads: list[str] = []

    def count(**_: Any) -> None:
        reads.append("GetItem")

    events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
    events.register("before-call.dynamodb.GetItem", count)
    try:
        retry = record_node_state.handler(step(action="REBOOTING", analysis=analysis("REBOOT")), context)
    finally:
        events.unregister("before-call.dynamodb.GetItem", count)
    assert retry == {"counted": False, "owned": True, "agentTimeoutSeconds": 1200}
    assert reads == ["GetItem"]  # the reboots already counted; ALL_OLD answers who owns the node


def test_a_reboot_that_failed_gives_its_budget_back(aws: None, context: FakeLambdaContext) -> None:
    acquire_node.handler(step(), context)
    record_node_state.handler(step(action="REBOOTING", analysis=analysis("REBOOT")), context)
    error = {"Error": "Ec2.Ec2Exception", "Cause": "UnauthorizedOperation: not allowed"}
    refund = step(action="REBOOT_NOT_PERFORMED", analysis=analysis("REBOOT"), error=error)
    out = record_node_state.handler(refund, context)
    assert out["next"] == "SUSPECT"
    assert out["reason"] == "reboot not performed: Ec2.Ec2Exception: UnauthorizedOperation: not allowed"
    row = state()
    assert row["reboots"] == []
    assert "lastRebootBy" not in row
    assert row["lockOwner"] == EXECUTION_ARN  # MarkNodeSuspect records and releases it next
    [entry] = history()
    assert (entry["kind"], entry["detail"]["reason"]) == ("REBOOT_NOT_PERFORMED", out["reason"])
    # A retry refunds nothing twice.
    assert record_node_state.handler(refund, context) == out
    assert state()["reboots"] == []
    assert [h["kind"] for h in history()] == ["REBOOT_NOT_PERFORMED"]


@pytest.mark.parametrize(
    ("action", "phase", "status", "outcome"),
    [
        ("RELEASE", "INITIAL", "HEALTHY", "HEALTHY"),
        ("RELEASE", "AFTER_REBOOT", "HEALTHY", "REPAIRED"),
        ("QUARANTINE", "INITIAL", "QUARANTINED", "QUARANTINED"),
        ("HOLD", "INITIAL", "HELD", "HELD"),
        ("SUSPECT", "INITIAL", "SUSPECT", "SUSPECT"),
        ("DRY_RUN", "INITIAL", "UNHEALTHY", "DRY_RUN"),
    ],
)
def test_finish_sets_status_and_releases(
    aws: None, context: FakeLambdaContext, *, action: str, phase: str, status: str, outcome: str
) -> None:
    acquire_node.handler(step(), context)
    payload = step(action=action, analysis=analysis(action), checkPlan={"phase": phase, "inconclusiveChecks": 0})
    out = record_node_state.handler(payload, context)
    assert out["outcome"] == outcome
    assert out["nodeId"] == NODE_ID
    assert out["actions"] == ([] if outcome == "HEALTHY" else [f"{action}: test: {action}"])
    row = state()
    assert (row["status"], row["lastOutcome"], row["reason"]) == (status, outcome, f"test: {action}")
    assert "lockOwner" not in row
    [h] = history()
    assert h["kind"] == action
    assert "expiresAt" in h


def test_only_lock_owner_writes(aws: None, context: FakeLambdaContext) -> None:
    acquire_node.handler(step(), context)
    before = state()
    assert record_node_state.handler(step(OTHER_EXECUTION_ARN, action="REBOOTING"), context) == {
        "counted": False,
        "owned": False,
        "agentTimeoutSeconds": 1200,
    }
    lost = record_node_state.handler(
        step(OTHER_EXECUTION_ARN, action="QUARANTINE", analysis=analysis("QUARANTINE")), context
    )
    assert lost["outcome"] == "LOST"
    after = state()
    assert after == before
    assert after["lockOwner"] == EXECUTION_ARN


@pytest.mark.parametrize("caller", [EXECUTION_ARN, OTHER_EXECUTION_ARN], ids=["retry", "other-execution"])
def test_finish_without_the_lock_writes_no_history(aws: None, context: FakeLambdaContext, caller: str) -> None:
    acquire_node.handler(step(), context)
    record_node_state.handler(step(action="QUARANTINE", analysis=analysis("QUARANTINE")), context)
    record_node_state.handler(step(caller, action="QUARANTINE", analysis=analysis("QUARANTINE")), context)
    assert [h["kind"] for h in history()] == ["QUARANTINE"]


def test_operator_quarantine_mid_recovery_ends_the_branch(aws: None, context: FakeLambdaContext) -> None:
    # `gpu-recovery node quarantine --force` clears the lock; the workflow's next step must not reboot the node.
    acquire_node.handler(step(), context)
    table = boto3.resource("dynamodb", region_name=REGION).Table(NODE_TABLE)
    table.update_item(
        Key={"nodeId": NODE_ID, "recordKey": "STATE"},
        UpdateExpression="SET #s = :q REMOVE lockOwner",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":q": "QUARANTINED"},
    )
    assert record_node_state.handler(step(action="REBOOTING"), context) == {
        "counted": False,
        "owned": False,
        "agentTimeoutSeconds": 1200,
    }
    assert state()["status"] == "QUARANTINED"
    assert state()["reboots"] == []


def test_dry_run_records_no_verdict_it_did_not_observe(aws: None, context: FakeLambdaContext) -> None:
    acquire_node.handler(step(), context)
    inconclusive = analysis("DRY_RUN", status="INCONCLUSIVE", action="NONE")
    out = record_node_state.handler(step(action="DRY_RUN", analysis=inconclusive), context)
    assert out["outcome"] == "UNCHECKED"
    row = state()
    assert row["status"] == "UNCHECKED"  # not SUSPECT, not UNHEALTHY: the dry run saw nothing
    assert "lastOutcome" not in row
    assert "lockOwner" not in row


def test_unknown_action_raises(aws: None, context: FakeLambdaContext) -> None:
    with pytest.raises(ValueError, match="action\n  Input should be 'REBOOTING'"):
        record_node_state.handler(step(action="TERMINATE"), context)
