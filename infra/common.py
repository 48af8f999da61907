"""Config values in CDK terms (config.py validates them and stays free of aws_cdk)."""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs

from infra.config import Config

_RETENTION = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
    60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
    365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS",
    1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS", 3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}  # fmt: skip


def retention(days: int) -> logs.RetentionDays:
    return logs.RetentionDays[_RETENTION[days]]


def removal_policy(config: Config) -> RemovalPolicy:
    return RemovalPolicy.DESTROY if config.REMOVAL_POLICY == "destroy" else RemovalPolicy.RETAIN


def service_principal(principal: str, source: str) -> iam.PrincipalBase:
    """The service principal ``principal`` may assume the role only on behalf of this account's resources that
    match ``source`` (``<service>:<resource pattern>``), through aws:SourceAccount and aws:SourceArn, as the IAM User
    Guide's "The confused deputy problem" advises for service roles. Used where the service documents the keys
    on role assumption: Step Functions (developer guide, "Cross-service confused deputy prevention": the account's
    stateMachine:*), EventBridge (user guide, "Confused deputy prevention": target roles) and ECS (developer guide,
    "Amazon ECS task IAM role": the account's ECS resources)."""
    service, _, resource = source.partition(":")
    source_arn = f"arn:{Aws.PARTITION}:{service}:{Aws.REGION}:{Aws.ACCOUNT_ID}:{resource}"
    return iam.ServicePrincipal(principal).with_conditions(
        {"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}, "ArnLike": {"aws:SourceArn": source_arn}}
    )
