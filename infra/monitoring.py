"""A CloudWatch dashboard of the recoveries and alarms to the notification topic.

The step Lambdas' own metrics are Powertools EMF metrics: namespace METRICS_NAMESPACE, dimension
`service` = POWERTOOLS_SERVICE_NAME (https://docs.powertools.aws.dev/lambda/python/latest/core/metrics/);
NodeVerdict also has `Action`. The rest are AWS's: AWS/States for executions
(https://docs.aws.amazon.com/step-functions/latest/dg/procedure-cw-metrics.html), AWS/SQS for the
dead-letter queue and AWS/Lambda for errors, each through its CDK construct.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Aws, Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import POWERTOOLS_SERVICE_NAME, Config

PERIOD = Duration.minutes(5)
# Custom metrics on the dashboard, each emitted by a step (tests/unit/test_metrics.py drives each one).
OUTCOMES = ("RecoveryStarted", "JobRestarted", "JobFailed", "RecoveryError")
NODE_ACTIONS = ("NodeRebooted", "NodeGpuReset", "NodeQuarantined", "FleetBreakerOpen")
TIME_TO_RECOVERY = "TimeToRecovery"
VERDICT = "NodeVerdict"
# A lock found held by an execution that no longer runs: it outlived its lease and no cleanup released it.
STALE_LOCK = "StaleLock"
CUSTOM_METRICS = (*OUTCOMES, *NODE_ACTIONS, TIME_TO_RECOVERY, VERDICT, STALE_LOCK)


class Monitoring(Construct):
    """Dashboard `<STACK_NAME>-<region>` and one alarm per condition a human must look at, each notifying the
    topic: executions failed or timed out, a message in the dead-letter queue, a node quarantined, the fleet
    breaker open, a lock older than its lease."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        state_machine: sfn.IStateMachine,
        functions: Mapping[str, lambda_.IFunction],
        dead_letter_queue: sqs.IQueue,
        topic: sns.ITopic,
        topic_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)

        def custom(name: str, statistic: str = "Sum", label: str | None = None) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=config.METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map={"service": POWERTOOLS_SERVICE_NAME},
                statistic=statistic,
                period=PERIOD,
                label=label,
            )

        failed = state_machine.metric_failed(period=PERIOD, statistic="Sum")
        timed_out = state_machine.metric_timed_out(period=PERIOD, statistic="Sum")
        dlq_depth = dead_letter_queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Max")
        verdicts = cloudwatch.MathExpression(
            expression=(
                f'SEARCH(\'{{{config.METRICS_NAMESPACE},service,Action}} MetricName="{VERDICT}" '
                f"service=\"{POWERTOOLS_SERVICE_NAME}\"', 'Sum', {int(PERIOD.to_seconds())})"
            ),
            label="",
            period=PERIOD,
        )
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            # Dashboards are global to the account, not regional (AWS::CloudWatch::Dashboard): the same stack
            # deployed in two regions needs two names.
            dashboard_name=f"{config.STACK_NAME}-{Aws.REGION}",
            widgets=[
                [
                    cloudwatch.GraphWidget(
                        title="Recoveries started and their outcome",
                        left=[custom(name) for name in OUTCOMES],
                        width=12,
                    ),
                    cloudwatch.GraphWidget(
                        title="Time to recovery (s, failed task stopped -> job restarted)",
                        left=[custom(TIME_TO_RECOVERY, p, p) for p in ("p50", "p90", "p99")],
                        width=12,
                    ),
                ],
                [
                    cloudwatch.GraphWidget(title="DCGM verdicts by action", left=[verdicts], width=12),
                    cloudwatch.GraphWidget(
                        title="Nodes rebooted, reset, quarantined; fleet breaker open (node held)",
                        left=[custom(name) for name in NODE_ACTIONS],
                        width=12,
                    ),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Executions failed / timed out; stale locks found",
                        left=[failed, timed_out, custom(STALE_LOCK)],
                        width=8,
                    ),
                    cloudwatch.GraphWidget(title="Dead-letter queue depth", left=[dlq_depth], width=8),
                    cloudwatch.GraphWidget(
                        title="Step Lambda errors",
                        left=[fn.metric_errors(period=PERIOD, label=name) for name, fn in functions.items()],
                        width=8,
                    ),
                ],
            ],
        )

        conditions = {
            "ExecutionsFailed": (failed, "a recovery execution failed"),
            "ExecutionsTimedOut": (timed_out, "a recovery execution timed out"),
            "DeadLetterQueueNotEmpty": (dlq_depth, "a failure event could not start a recovery (see the DLQ)"),
            "NodeQuarantined": (custom("NodeQuarantined"), "a node was quarantined: it needs a human"),
            "FleetBreakerOpen": (custom("FleetBreakerOpen"), "the fleet breaker held a node for a human"),
            STALE_LOCK: (
                custom(STALE_LOCK),
                "a lock outlived its owner's execution (its lease) and no cleanup released it: see gpu-recovery locks",
            ),
        }
        notify = actions.SnsAction(topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for name, (metric, description) in conditions.items():
            alarm = cloudwatch.Alarm(
                self,
                name,
                alarm_name=f"{config.STACK_NAME}-{name}",
                alarm_description=description,
                metric=metric,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            alarm.add_alarm_action(notify)
            self.alarms[name] = alarm

        # CloudWatch publishes alarm notifications as its service principal; the topic is encrypted with our
        # key, so the key policy must let CloudWatch use it and the topic policy must let it publish
        # (https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html, "compatibility with AWS services").
        # Both only for this account's alarms of this stack (confused deputy).
        from_our_alarms = {
            "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
            "ArnLike": {
                "aws:SourceArn": f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{Aws.ACCOUNT_ID}:alarm:"
                f"{config.STACK_NAME}-*"
            },
        }
        cloudwatch_principal = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsUseKey",
                principals=[cloudwatch_principal],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy "*" means this key
                conditions=from_our_alarms,
            )
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[cloudwatch_principal],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions=from_our_alarms,
            )
        )
