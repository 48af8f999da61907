"""EventBridge rule: an execution of the recovery state machine that ended FAILED, TIMED_OUT or ABORTED invokes
the CleanupExecution Lambda, which releases what it still holds and tells people. Cleanup is idempotent
(conditional writes on the ended execution's own locks), so the target retries like the failure trigger's."""

from __future__ import annotations

from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.event_pattern import execution_ended_badly_pattern
from infra.notifications import Notifications
from infra.trigger import MAX_EVENT_AGE, RETRY_ATTEMPTS, rule_with_dead_letter_queue


class ExecutionCleanup(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.IStateMachine,
        function: lambda_.Function,
        notifications: Notifications,
    ) -> None:
        super().__init__(scope, construct_id)
        function.add_environment("NOTIFICATION_TOPIC_ARN", notifications.topic.topic_arn)
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[notifications.topic.topic_arn])
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[notifications.key.key_arn])
        )
        self.rule, self.dead_letter_queue = rule_with_dead_letter_queue(
            self,
            description="A recovery execution that ended FAILED, TIMED_OUT or ABORTED: release what it holds",
            pattern=execution_ended_badly_pattern([state_machine.state_machine_arn]),
            target=lambda queue: targets.LambdaFunction(
                function, dead_letter_queue=queue, retry_attempts=RETRY_ATTEMPTS, max_event_age=MAX_EVENT_AGE
            ),
        )
