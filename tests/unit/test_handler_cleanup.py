"""CleanupExecution against moto: what an execution that ended badly still holds is released, once."""

from __future__ import annotations

from typing import Any

import boto3
import cleanup_execution
import pytest
from moto.sns.models import sns_backends
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
    scan,
)

from recovery.settings import get_settings

TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/gpu-training/4f3c2b1a9d8e7f6a5b4c3d2e1f0a9b8c"
STATE_MACHINE = EXECUTION_ARN.rsplit(":", 1)[0].replace(":execution:", ":stateMachine:")


def status_change(status: str, arn: str = EXECUTION_ARN) -> dict[str, Any]:
    return {
        "version": "0",
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {
            "executionArn": arn,
            "stateMachineArn": STATE_MACHINE,
            "name": arn.rsplit(":", 1)[-1],
            "status": status,
            "startDate": 1763608470000,
            "stopDate": 1763612070000,
            "input": '{"taskArn": "' + TASK_ARN + '", "reason": "manual request", "dryRun": false}',
        },
    }


@pytest.fixture
def topic(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> str:
    arn = boto3.client("sns", region_name=REGION).create_topic(Name="gpu-recovery")["TopicArn"]
    monkeypatch.setenv("NOTIFICATION_TOPIC_ARN", arn)
    get_settings.cache_clear()
    return str(arn)


def held_by(owner: str, fleet: Fleet) -> None:
    """A job lock, a node mid-reboot (drained) and its fleet-breaker slot, all held by `owner`."""
    ddb = boto3.resource("dynamodb", region_name=REGION)
    ddb.Table(JOB_TABLE).put_item(Item={"jobId": "job-a", "status": "RECOVERING", "lockOwner": owner})
    ddb.Table(TASK_TABLE).put_item(
        Item={"taskArn": TASK_ARN, "jobId": "job-a", "recoveryExecution": owner, "recoveryStatus": "RECOVERING"}
    )
    node = ddb.Table(NODE_TABLE)
    node.put_item(
        Item={
            "nodeId": fleet.instance_ids[0],
            "recordKey": "STATE",
            "status": "REBOOTING",
            "lockOwner": owner,
            "containerInstanceArn": fleet.container_instances[0],
        }
    )
    node.put_item(
        Item={
            "nodeId": f"FLEET#{CLUSTER}",
            "recordKey": "REPAIRS",
            "slots": {fleet.instance_ids[0]: {"by": owner, "until": "2099-01-01T00:00:00+00:00"}},
        }
    )


def published(topic: str) -> int:
    return len(sns_backends["123456789012"][REGION].topics[topic].sent_notifications)


def test_timed_out_execution_is_cleaned_up_and_reported(fleet: Fleet, topic: str, context: FakeLambdaContext) -> None:
    held_by(EXECUTION_ARN, fleet)
    out = cleanup_execution.handler(status_change("TIMED_OUT"), context)
    assert out["releasedJobs"] == ["job-a"]
    assert out["releasedNodes"] == [fleet.instance_ids[0]]
    assert out["notified"] is True
    (job,) = scan(JOB_TABLE)
    assert job["status"] == "ERROR"
    assert "lockOwner" not in job
    rows = {row["recordKey"]: row for row in scan(NODE_TABLE) if row["nodeId"] == fleet.instance_ids[0]}
    assert rows["STATE"]["status"] == "SUSPECT"
    assert "lockOwner" not in rows["STATE"]
    assert any(row.get("kind") == "ERROR" for row in rows.values())
    (slots,) = [row["slots"] for row in scan(NODE_TABLE) if row["recordKey"] == "REPAIRS"]
    assert slots == {}
    ci = boto3.client("ecs", region_name=REGION).describe_container_instances(
        cluster=CLUSTER, containerInstances=[fleet.container_instances[0]]
    )["containerInstances"][0]
    assert ci["status"] == "DRAINING"
    assert published(topic) == 1
    (task,) = scan(TASK_TABLE)
    assert task["recoveryStatus"] == "ERROR"
    # A redelivered event finds nothing left: nothing is written again, but a timeout is still reported.
    again = cleanup_execution.handler(status_change("TIMED_OUT"), context)
    assert (again["releasedJobs"], again["releasedNodes"]) == ([], [])


def test_failed_execution_that_cleaned_up_after_itself_pages_nobody_twice(
    fleet: Fleet, topic: str, context: FakeLambdaContext
) -> None:
    held_by(OTHER_EXECUTION_ARN, fleet)
    out = cleanup_execution.handler(status_change("FAILED"), context)
    assert out == {
        "executionArn": EXECUTION_ARN,
        "status": "FAILED",
        "releasedJobs": [],
        "releasedNodes": [],
        "releasedSlots": [],
        "notified": False,
    }
    assert published(topic) == 0
    (job,) = scan(JOB_TABLE)
    assert job["lockOwner"] == OTHER_EXECUTION_ARN  # another execution's lock is never touched
    (task,) = scan(TASK_TABLE)
    assert task["recoveryStatus"] == "RECOVERING"  # another execution handles that failure
