"""The trigger's event pattern, evaluated by moto's EventBridge matcher on realistic ECS events."""

from __future__ import annotations

import copy
import json
from typing import Any, cast

import pytest
from aws_cdk.assertions import Template
from moto.events.models import EventPattern

from infra.config import DCGM_TASK_FAMILY
from infra.event_pattern import (
    IGNORED_STOP_CODES,
    agent_state_change_pattern,
    execution_ended_badly_pattern,
    task_failure_pattern,
)
from recovery.policy import NEVER_GPU_STOP_CODES
from tests.infra.helpers import of_type

CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/gpu-cluster"
OTHER_CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/cpu-cluster"

GPU_TASK_FAILURE: dict[str, Any] = {
    "version": "0",
    "id": "3317b2af-7005-947d-b652-f55e762e571a",
    "detail-type": "ECS Task State Change",
    "source": "aws.ecs",
    "account": "123456789012",
    "time": "2025-05-01T10:20:30Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ecs:us-east-1:123456789012:task/gpu-cluster/0fb1e7b5a0f34d0c9e0e2c1c57a6d0c1"],
    "detail": {
        "clusterArn": CLUSTER,
        "containerInstanceArn": "arn:aws:ecs:us-east-1:123456789012:container-instance/gpu-cluster/7c1c0b2a",
        "containers": [
            {
                "containerArn": "arn:aws:ecs:us-east-1:123456789012:container/gpu-cluster/0fb1e7b5/1d2e3f",
                "exitCode": 1,
                "lastStatus": "STOPPED",
                "name": "trainer",
                "gpuIds": ["0", "1", "2", "3", "4", "5", "6", "7"],
            }
        ],
        "desiredStatus": "STOPPED",
        "group": "family:llm-train",
        "lastStatus": "STOPPED",
        "launchType": "EC2",
        "startedBy": "training-scheduler",
        "stopCode": "EssentialContainerExited",
        "stoppedReason": "Essential container in task exited",
        "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/gpu-cluster/0fb1e7b5a0f34d0c9e0e2c1c57a6d0c1",
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/llm-train:12",
        "version": 5,
    },
}


def event(**detail: Any) -> dict[str, Any]:
    result = copy.deepcopy(GPU_TASK_FAILURE)
    for key, value in detail.items():
        if value is None:
            result["detail"].pop(key, None)
        else:
            result["detail"][key] = value
    return result


def matches(pattern: EventPattern, evt: dict[str, Any]) -> bool:
    # moto types events as a TypedDict of what PutEvents accepts; a delivered event is a plain dict.
    return pattern.matches_event(cast(Any, evt))


@pytest.fixture(scope="module")
def pattern() -> EventPattern:
    return EventPattern.load(json.dumps(task_failure_pattern([CLUSTER], DCGM_TASK_FAMILY)))


@pytest.mark.parametrize(
    ("case", "evt", "expected"),
    [
        ("gpu task failure", event(), True),
        ("task without startedBy (plain RunTask)", event(startedBy=None), True),
        ("task without stopCode", event(stopCode=None), True),
        ("task without startedBy nor stopCode", event(startedBy=None, stopCode=None), True),
        ("failed to start (image pull, placement): no GPU work ran", event(stopCode="TaskFailedToStart"), False),
        ("task without group", event(group=None), True),
        ("job started by another Step Functions workflow", event(startedBy="AWS Step Functions"), True),
        ("our DCGM check task", event(startedBy="AWS Step Functions", group="family:gpu-recovery-dcgm-check"), False),
        ("our DCGM check task without stopCode", event(group="family:gpu-recovery-dcgm-check", stopCode=None), False),
        ("user stop", event(stopCode="UserInitiated"), False),
        ("user stop without startedBy", event(stopCode="UserInitiated", startedBy=None), False),
        ("service scaling in", event(stopCode="ServiceSchedulerInitiated"), False),
        ("spot interruption", event(stopCode="SpotInterruption"), False),
        ("instance termination notice", event(stopCode="TerminationNotice"), False),
        ("other cluster", event(clusterArn=OTHER_CLUSTER), False),
        ("still running", event(lastStatus="RUNNING", desiredStatus="STOPPED"), False),
    ],
)
def test_pattern(pattern: EventPattern, case: str, evt: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, evt) is expected, case


def test_other_source_or_detail_type_does_not_match(pattern: EventPattern) -> None:
    assert not matches(pattern, {**event(), "detail-type": "ECS Container Instance State Change"})
    assert not matches(pattern, {**event(), "source": "aws.batch"})


def test_several_clusters() -> None:
    pattern = EventPattern.load(json.dumps(task_failure_pattern([CLUSTER, OTHER_CLUSTER], DCGM_TASK_FAMILY)))
    assert matches(pattern, event(clusterArn=OTHER_CLUSTER))


def test_rule_uses_the_same_pattern(template: Template, resources: dict[str, dict[str, Any]]) -> None:
    (rule,) = [r for r in of_type(resources, "AWS::Events::Rule").values() if "ECS Task State Change" in str(r)]
    deployed = rule["Properties"]["EventPattern"]
    expected = task_failure_pattern(["<cluster>"], DCGM_TASK_FAMILY)
    assert deployed["source"] == expected["source"]
    assert deployed["detail-type"] == expected["detail-type"]
    assert deployed["detail"]["$or"] == expected["detail"]["$or"]
    assert deployed["detail"]["lastStatus"] == ["STOPPED"]
    (cluster,) = deployed["detail"]["clusterArn"]
    assert cluster["Fn::Join"][1][-1] == ":cluster/gpu-cluster"


def test_readiness_rule_sends_the_clusters_agent_changes_to_agent_connected(
    resources: dict[str, dict[str, Any]],
) -> None:
    (rule,) = [r for r in of_type(resources, "AWS::Events::Rule").values() if "Container Instance" in str(r)]
    deployed = rule["Properties"]["EventPattern"]
    expected = agent_state_change_pattern(["<cluster>"])
    assert (deployed["source"], deployed["detail-type"]) == (expected["source"], expected["detail-type"])
    # Disconnects too: a reconnect counts only after a disconnect since the reboot.
    assert deployed["detail"]["agentConnected"] == [True, False]
    (cluster,) = deployed["detail"]["clusterArn"]
    assert cluster["Fn::Join"][1][-1] == ":cluster/gpu-cluster"
    (target,) = rule["Properties"]["Targets"]
    assert "AgentConnected" in target["Arn"]["Fn::GetAtt"][0]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert "DeadLetterConfig" in target


def test_rule_targets_state_machine_with_retry_and_dlq(resources: dict[str, dict[str, Any]]) -> None:
    (rule,) = [r for r in of_type(resources, "AWS::Events::Rule").values() if "ECS Task State Change" in str(r)]
    (target,) = rule["Properties"]["Targets"]
    (machine_id,) = of_type(resources, "AWS::StepFunctions::StateMachine")
    (queue_id,) = [q for q in of_type(resources, "AWS::SQS::Queue") if q.startswith("Trigger")]
    assert target["Arn"] == {"Ref": machine_id}
    assert "Input" not in target  # the whole event
    assert "InputPath" not in target
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] >= 3600


def test_rule_and_classifier_ignore_the_same_tasks() -> None:
    """The rule filters our DCGM checks and never-GPU stop codes; ClassifyFailure repeats the check for manual
    and replayed inputs. The Lambda asset cannot import infra/, so the two lists are pinned equal here."""
    assert set(IGNORED_STOP_CODES) == NEVER_GPU_STOP_CODES


def test_a_supplied_check_task_is_filtered_by_its_family() -> None:
    pattern = EventPattern.load(json.dumps(task_failure_pattern([CLUSTER], "my-dcgm")))
    assert not matches(pattern, event(group="family:my-dcgm"))
    assert matches(pattern, event(group="family:gpu-recovery-dcgm-check"))


def test_cleanup_rule_takes_executions_that_ended_badly(resources: dict[str, dict[str, Any]]) -> None:
    (rule,) = [r for r in of_type(resources, "AWS::Events::Rule").values() if "aws.states" in str(r)]
    deployed = rule["Properties"]["EventPattern"]
    expected = execution_ended_badly_pattern(["<state machine>"])
    assert deployed["detail-type"] == expected["detail-type"] == ["Step Functions Execution Status Change"]
    assert deployed["detail"]["status"] == ["FAILED", "TIMED_OUT", "ABORTED"]
    (target,) = rule["Properties"]["Targets"]
    assert "CleanupExecution" in json.dumps(target["Arn"])
    pattern = EventPattern.load(json.dumps(execution_ended_badly_pattern(["arn:sm"])))
    ended = {"source": "aws.states", "detail-type": "Step Functions Execution Status Change"}
    assert matches(pattern, ended | {"detail": {"stateMachineArn": "arn:sm", "status": "TIMED_OUT"}})
    assert not matches(pattern, ended | {"detail": {"stateMachineArn": "arn:sm", "status": "SUCCEEDED"}})
    assert not matches(pattern, ended | {"detail": {"stateMachineArn": "arn:other", "status": "FAILED"}})
