"""EventBridge rule: a stopped task of the watched cluster starts one recovery execution."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.event_pattern import task_failure_pattern
from infra.nag import acknowledge

# StartExecution fails only on throttling or an outage; retry for a while, then keep the event in the DLQ where
# an operator can replay it (a failure event hours old still names the node to check).
_MAX_EVENT_AGE = Duration.hours(6)
_RETRY_ATTEMPTS = 20


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
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        pattern = task_failure_pattern([cluster_arn], dcgm_task_family)
        self.rule = events.Rule(
            self,
            "Rule",
            description="Stopped ECS tasks of the GPU cluster that may be GPU failures start a recovery",
            event_pattern=events.EventPattern(
                source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"]
            ),
        )
        # No input given: the execution receives the whole event, which ClassifyFailure normalises.
        self.rule.add_target(
            targets.SfnStateMachine(
                state_machine,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=_RETRY_ATTEMPTS,
                max_event_age=_MAX_EVENT_AGE,
            )
        )
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is itself the dead-letter queue of the EventBridge target.",
        )
