"""The stack, deployed into the local engine: the same tables, topic, step Lambdas, definition and
substitutions that CDK deploys, with names and environment from the same configuration (infra.config)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from moto.events.models import EventPattern
from moto.sns.models import sns_backends

from gpu_recovery.engine import LocalEngine
from gpu_recovery.resources import DEFINITION
from gpu_recovery.sim import SimFleet
from gpu_recovery.stack_policies import GPU_RESET_DOCUMENT, StackPolicies, synthesized_template
from infra.config import Config
from infra.event_pattern import agent_state_change_pattern, execution_ended_badly_pattern, task_failure_pattern
from infra.gpu_reset_document import gpu_reset_document
from infra.substitutions import EVENT_FUNCTIONS, LAMBDAS, STEP_FUNCTIONS, definition_substitutions, function_arn_key
from recovery.schema import create_table_requests

# Quiet, local-only Powertools: no X-Ray daemon here, and the report says what happened.
LOCAL_POWERTOOLS = {"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true"}


@dataclass
class LocalStack:
    engine: LocalEngine
    config: Config
    state_machine_arn: str
    topic_arn: str
    pattern: EventPattern
    cleanup: Callable[[dict[str, Any]], None]  # the cleanup rule: its pattern, then CleanupExecution

    def matches(self, event: dict[str, Any]) -> bool:
        """Whether the EventBridge rule would start an execution for this event."""
        return bool(self.pattern.matches_event(event))  # type: ignore[arg-type]

    def start_execution(self, name: str, event: dict[str, Any]) -> str:
        """Start a recovery for a matching event as the failure rule's target does: with the target's role."""
        with self.engine.authorizer.delivering(self.state_machine_arn):
            return self.engine.start_execution(self.state_machine_arn, name, event)

    def wait(self, execution_arn: str, timeout: float = 120.0) -> dict[str, Any]:
        """Wait for the execution to end, then deliver its "Execution Status Change" event as EventBridge does:
        through the cleanup rule's pattern to CleanupExecution. Returns the final describe_execution."""
        description = self.engine.wait(execution_arn, timeout)
        self.cleanup(status_change_event(description))
        return description

    def notifications(self) -> list[dict[str, str]]:
        region, account = self.topic_arn.split(":")[3:5]
        topic = sns_backends[account][region].topics[self.topic_arn]
        return [
            {"subject": subject or "", "message": message} for _, message, subject, _, _ in topic.sent_notifications
        ]


def authorize(engine: LocalEngine, state_machine_arn: str, template: dict[str, Any]) -> None:
    """Every call of the step Lambdas, of the definition and of EventBridge delivering to the rules' targets is
    authorized against the template's roles and the targets' resource policies."""
    names = {module: function_name(module) for module in LAMBDAS}
    machine_name = state_machine_arn.rsplit(":", 1)[-1]
    policies = StackPolicies.resolve(template, engine.region, engine.account_id, names, machine_name)
    for module, (role, log_group) in policies.functions.items():
        engine.authorizer.assign_function(names[module], policies.roles[role], log_group)
    engine.authorizer.assign_state_machine(state_machine_arn, policies.roles[policies.state_machine_role])
    engine.authorizer.rule_targets.update(policies.rule_targets)


def status_change_event(description: dict[str, Any]) -> dict[str, Any]:
    """The EventBridge event Step Functions sends when a Standard workflow's execution changes status."""
    detail = {
        "executionArn": description["executionArn"],
        "stateMachineArn": description["stateMachineArn"],
        "name": description["name"],
        "status": description["status"],
        "input": description.get("input"),
        "output": description.get("output"),
        "error": description.get("error"),
        "cause": description.get("cause"),
    }
    return {
        "version": "0",
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "resources": [description["executionArn"]],
        "detail": detail,
    }


def deliver_through(
    engine: LocalEngine, pattern: dict[str, Any], function_arn: str
) -> Callable[[dict[str, Any]], None]:
    """What an EventBridge rule with this pattern and a Lambda target does with an event: invoke the function
    with it if it matches, as EventBridge (authorized by the function's resource policy). A failed invocation fails
    loudly here (in AWS it would be retried, then dead-lettered)."""
    compiled = EventPattern.load(json.dumps(pattern))

    def deliver(event: dict[str, Any]) -> None:
        if compiled.matches_event(event):  # type: ignore[arg-type]
            with engine.authorizer.delivering(function_arn):
                response = boto3.client("lambda").invoke(FunctionName=function_arn, Payload=json.dumps(event).encode())
            if response.get("FunctionError"):
                raise RuntimeError(f"{function_arn} failed: {response['Payload'].read().decode()}")

    return deliver


def create_tables(config: Config) -> None:
    dynamodb = boto3.client("dynamodb")
    for request in create_table_requests(config.TASK_TABLE_NAME, config.JOB_TABLE_NAME, config.NODE_TABLE_NAME):
        dynamodb.create_table(**request)


def function_name(module: str) -> str:
    """The local name of a step Lambda (CloudFormation would generate one)."""
    return module.replace("_", "-")


def deploy(engine: LocalEngine, fleet: SimFleet, overrides: dict[str, str]) -> LocalStack:
    context = {
        **overrides,
        "ECS_CLUSTER_NAME": fleet.cluster_name,
        "DCGM_CONTAINER_NAME": fleet.dcgm_container_name,
        "DCGM_HEALTH_CHECK_TASK": fleet.dcgm_task_definition_arn,
        "DCGM_LOG_GROUP": fleet.dcgm_log_group,
    }
    config = Config.load(context=context, env={})
    # The deploy prerequisite (docs/permissions.md): every GPU instance of the cluster carries MANAGED_NODE_TAG.
    key, value = config.managed_node_tag
    boto3.client("ec2").create_tags(Resources=fleet.instance_ids(), Tags=[{"Key": key, "Value": value}])
    create_tables(config)
    topic_arn = boto3.client("sns").create_topic(Name=config.SNS_TOPIC_NAME)["TopicArn"]
    environment = config.lambda_environment() | {"DCGM_LOG_GROUP": fleet.dcgm_log_group, "LOG_LEVEL": "WARNING"}
    environment |= LOCAL_POWERTOOLS | {"POWERTOOLS_LOG_LEVEL": "WARNING"}
    # Only CleanupExecution reads it, but local handlers share one process environment (and cached settings).
    environment |= {"NOTIFICATION_TOPIC_ARN": topic_arn}
    values = {
        function_arn_key(name): engine.deploy_function(function_name(module), f"{module}.handler", environment)
        for module, name in STEP_FUNCTIONS.items()
    }
    event_arns = {
        module: engine.deploy_function(function_name(module), f"{module}.handler", environment)
        for module in EVENT_FUNCTIONS
    }
    values |= {
        "Partition": "aws",
        "ClusterArn": fleet.cluster_arn,
        "DcgmTaskDefinitionArn": fleet.dcgm_task_definition_arn,
        "DcgmContainerName": fleet.dcgm_container_name,
        "NotificationTopicArn": topic_arn,
        "JobTableName": config.JOB_TABLE_NAME,
        "TaskTableName": config.TASK_TABLE_NAME,
        "GpuResetDocumentName": boto3.client("ssm").create_document(
            Content=json.dumps(gpu_reset_document()), Name=GPU_RESET_DOCUMENT, DocumentType="Command"
        )["DocumentDescription"]["Name"],
    }
    state_machine_arn = engine.deploy_state_machine(
        f"{config.STACK_NAME}-recovery", DEFINITION, definition_substitutions(values)
    )
    authorize(engine, state_machine_arn, synthesized_template(context))
    pattern = EventPattern.load(json.dumps(task_failure_pattern([fleet.cluster_arn], config.dcgm_task_family)))
    cleanup = deliver_through(
        engine, execution_ended_badly_pattern([state_machine_arn]), event_arns["cleanup_execution"]
    )
    fleet.subscribe_agent_events(
        deliver_through(engine, agent_state_change_pattern([fleet.cluster_arn]), event_arns["agent_connected"])
    )
    return LocalStack(engine, config, state_machine_arn, topic_arn, pattern, cleanup)
