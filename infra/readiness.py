"""EventBridge rule: every container instance state change of the watched cluster invokes AgentConnected, which
completes a rebooted node's WaitForAgent task token once its ECS agent is back (functions/recovery/readiness.py).
The function is idempotent (a used token is ignored), so the target retries like the failure trigger's."""

from __future__ import annotations

from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.event_pattern import agent_state_change_pattern
from infra.trigger import MAX_EVENT_AGE, RETRY_ATTEMPTS, rule_with_dead_letter_queue


class AgentReadiness(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, cluster_arn: str, function: lambda_.Function) -> None:
        super().__init__(scope, construct_id)
        # targets.LambdaFunction adds the function's resource policy allowing events.amazonaws.com from this rule.
        self.rule, self.dead_letter_queue = rule_with_dead_letter_queue(
            self,
            description="A container instance of the GPU cluster changed: a rebooted node's agent may be back",
            pattern=agent_state_change_pattern([cluster_arn]),
            target=lambda queue: targets.LambdaFunction(
                function, dead_letter_queue=queue, retry_attempts=RETRY_ATTEMPTS, max_event_age=MAX_EVENT_AGE
            ),
        )
