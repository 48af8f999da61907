"""The dashboard and the alarms: every metric it shows and every alarm it raises, and CloudWatch's right to
notify the encrypted topic."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match, Template

from infra.config import POWERTOOLS_SERVICE_NAME
from infra.monitoring import CUSTOM_METRICS
from tests.infra.helpers import of_type

Resources = dict[str, dict[str, Any]]


def dashboard_body(resources: Resources) -> str:
    """The dashboard JSON with CloudFormation's Fn::Join pieces that are plain strings."""
    ((_, dashboard),) = of_type(resources, "AWS::CloudWatch::Dashboard").items()
    body = dashboard["Properties"]["DashboardBody"]
    return "".join(part if isinstance(part, str) else json.dumps(part) for part in body["Fn::Join"][1])


def test_dashboard_shows_every_metric(resources: Resources) -> None:
    ((_, dashboard),) = of_type(resources, "AWS::CloudWatch::Dashboard").items()
    assert dashboard["Properties"]["DashboardName"] == {
        "Fn::Join": ["", ["EcsGpuRecoveryStack-", {"Ref": "AWS::Region"}]]
    }
    body = dashboard_body(resources)
    for name in CUSTOM_METRICS:
        assert f'"{name}"' in body or f'MetricName=\\"{name}\\"' in body, name
    assert body.count(f'"service","{POWERTOOLS_SERVICE_NAME}"') >= len(CUSTOM_METRICS) - 1
    for aws_metric in ("ExecutionsFailed", "ExecutionsTimedOut", "ApproximateNumberOfMessagesVisible", "Errors"):
        assert f'"{aws_metric}"' in body
    for percentile in ("p50", "p90", "p99"):
        assert f'"stat":"{percentile}"' in body


def test_alarms_notify_the_topic(template: Template, resources: Resources) -> None:
    (topic_id,) = of_type(resources, "AWS::SNS::Topic")
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"] for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
    }
    assert set(alarms) == {
        f"EcsGpuRecoveryStack-{name}"
        for name in (
            "ExecutionsFailed",
            "ExecutionsTimedOut",
            "DeadLetterQueueNotEmpty",
            "NodeQuarantined",
            "FleetBreakerOpen",
            "StaleLock",
        )
    }
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
    assert alarms["EcsGpuRecoveryStack-NodeQuarantined"]["Namespace"] == "EcsGpuRecovery"
    assert alarms["EcsGpuRecoveryStack-NodeQuarantined"]["Dimensions"] == [
        {"Name": "service", "Value": POWERTOOLS_SERVICE_NAME}
    ]
    assert alarms["EcsGpuRecoveryStack-ExecutionsFailed"]["Namespace"] == "AWS/States"
    assert alarms["EcsGpuRecoveryStack-DeadLetterQueueNotEmpty"]["Namespace"] == "AWS/SQS"


def test_cloudwatch_may_use_the_topic_key_and_publish_for_our_alarms_only(template: Template) -> None:
    only_ours = Match.object_like({"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}})
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Condition": only_ours,
    }
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [Match.object_like(statement | {"Action": ["kms:Decrypt", "kms:GenerateDataKey"]})]
                )
            }
        },
    )
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {"PolicyDocument": {"Statement": Match.array_with([Match.object_like(statement | {"Action": "sns:Publish"})])}},
    )
