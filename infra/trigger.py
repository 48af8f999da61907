"""EventBridge rule: a stopped task of the watched cluster starts one recovery execution."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.common import service_principal
from infra.event_pattern import task_failure_pattern
from infra.nag import acknowledge

# A target fails only on throttling or an outage; retry for a while, then keep the event in the DLQ where
# an operator can replay it (a failure event hours old still names the node to check).
MAX_EVENT_AGE = Duration.hours(6)
RETRY_ATTEMPTS = 20


def rule_with_dead_letter_queue(
    scope: Construct,
    *,
    description: str,
    pattern: dict[str, Any],
    target: Callable[[sqs.IQueue], events.IRuleTarget],
) -> tuple[events.Rule, sqs.Queue]:
    """A rule on the default bus whose target retries and then keeps the event in an encrypted queue."""
    dead_letter_queue = sqs.Queue(
        scope,
        "DeadLetterQueue",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    rule = events.Rule(
        scope,
        "Rule",
        description=description,
        event_pattern=events.EventPattern(
            source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"]
        ),
    )
    rule.add_target(target(dead_letter_queue))
    acknowledge(
        dead_letter_queue, "AwsSolutions-SQS3", "This queue is itself the dead-letter queue of the EventBridge target."
    )
    return rule, dead_letter_queue


class FailureTrigger(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster_arn: str,
        dcgm_task_family: str,
        state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        # Starts the recovery for the rule. Any rule of the account, not this one: the rule names the role, so the
        # role naming the rule would be a circular reference. CDK grants it states:StartExecution on the target.
        target_role = iam.Role(
            self, "TargetRole", assumed_by=service_principal("events.amazonaws.com", "events:rule/*")
        )
        # No input given: the execution receives the whole event, which ClassifyFailure normalises.
        self.rule, self.dead_letter_queue = rule_with_dead_letter_queue(
            self,
            description="Stopped ECS tasks of the GPU cluster that may be GPU failures start a recovery",
            pattern=task_failure_pattern([cluster_arn], dcgm_task_family),
            target=lambda queue: targets.SfnStateMachine(
                state_machine,
                dead_letter_queue=queue,
                retry_attempts=RETRY_ATTEMPTS,
                max_event_age=MAX_EVENT_AGE,
                role=target_role,
            ),
        )
