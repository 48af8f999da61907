"""The stack, deployed into the local engine: the same tables, topic, step Lambdas, definition and
substitutions that CDK deploys, with names and environment from the same configuration (infra.config)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
from moto.events.models import EventPattern
from moto.sns.models import sns_backends

from gpu_recovery.engine import LocalEngine
from gpu_recovery.resources import DEFINITION
from gpu_recovery.sim import SimFleet
from infra.config import Config
from infra.event_pattern import task_failure_pattern
from infra.substitutions import STEP_FUNCTIONS, definition_substitutions, function_arn_key

# Quiet, local-only Powertools: no X-Ray daemon here, and the report says what happened.
LOCAL_POWERTOOLS = {"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true"}


@dataclass
class LocalStack:
    engine: LocalEngine
    config: Config
    state_machine_arn: str
    topic_arn: str
    pattern: EventPattern

    def matches(self, event: dict[str, Any]) -> bool:
        """Whether the EventBridge rule would start an execution for this event."""
        return bool(self.pattern.matches_event(event))  # type: ignore[arg-type]

    def notifications(self) -> list[dict[str, str]]:
        region, account = self.topic_arn.split(":")[3:5]
        topic = sns_backends[account][region].topics[self.topic_arn]
        return [
            {"subject": subject or "", "message": message} for _, message, subject, _, _ in topic.sent_notifications
        ]


def create_tables(config: Config) -> None:
    dynamodb = boto3.client("dynamodb")
    string = "S"
    specs = {
        config.TASK_TABLE_NAME: (["taskArn"], {"jobId": string}),
        config.JOB_TABLE_NAME: (["jobId"], {}),
        config.NODE_TABLE_NAME: (["nodeId", "recordKey"], {}),
    }
    for name, (keys, extra) in specs.items():
        attributes = dict.fromkeys(keys, string) | extra
        kwargs: dict[str, Any] = {
            "TableName": name,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [{"AttributeName": k, "KeyType": t} for k, t in zip(keys, ("HASH", "RANGE"), strict=False)],
            "AttributeDefinitions": [{"AttributeName": k, "AttributeType": t} for k, t in attributes.items()],
        }
        if extra:
            kwargs["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": "byJob",
                    "KeySchema": [
                        {"AttributeName": "jobId", "KeyType": "HASH"},
                        {"AttributeName": "taskArn", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ]
        dynamodb.create_table(**kwargs)


def deploy(engine: LocalEngine, fleet: SimFleet, overrides: dict[str, str]) -> LocalStack:
    config = Config.load(
        context={
            **overrides,
            "ECS_CLUSTER_NAME": fleet.cluster_name,
            "DCGM_CONTAINER_NAME": fleet.dcgm_container_name,
            "DCGM_HEALTH_CHECK_TASK": fleet.dcgm_task_definition_arn,
            "DCGM_LOG_GROUP": fleet.dcgm_log_group,
        },
        env={},
    )
    create_tables(config)
    topic_arn = boto3.client("sns").create_topic(Name=config.SNS_TOPIC_NAME)["TopicArn"]
    environment = config.lambda_environment() | {"DCGM_LOG_GROUP": fleet.dcgm_log_group, "LOG_LEVEL": "WARNING"}
    environment |= LOCAL_POWERTOOLS | {"POWERTOOLS_LOG_LEVEL": "WARNING"}
    values = {
        function_arn_key(name): engine.deploy_function(module.replace("_", "-"), f"{module}.handler", environment)
        for module, name in STEP_FUNCTIONS.items()
    }
    values |= {
        "ClusterArn": fleet.cluster_arn,
        "DcgmTaskDefinitionArn": fleet.dcgm_task_definition_arn,
        "DcgmContainerName": fleet.dcgm_container_name,
        "NotificationTopicArn": topic_arn,
        "JobTableName": config.JOB_TABLE_NAME,
        "TaskTableName": config.TASK_TABLE_NAME,
    }
    state_machine_arn = engine.deploy_state_machine(
        f"{config.STACK_NAME}-recovery", DEFINITION, definition_substitutions(values)
    )
    pattern = EventPattern.load(json.dumps(task_failure_pattern([fleet.cluster_arn])))
    return LocalStack(engine, config, state_machine_arn, topic_arn, pattern)
