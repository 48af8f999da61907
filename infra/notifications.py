"""The notification topic, encrypted with a key the stack owns."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.common import removal_policy
from infra.config import Config

# The account may administer and use the key through IAM, spelled out so that no policy in the stack grants a
# wildcard action (CDK's default key policy grants kms:* to the account).
_KEY_ACCOUNT_ACTIONS = [
    "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:CreateGrant", "kms:Decrypt", "kms:DeleteAlias",
    "kms:DescribeKey", "kms:DisableKey", "kms:DisableKeyRotation", "kms:EnableKey", "kms:EnableKeyRotation",
    "kms:Encrypt", "kms:GenerateDataKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListAliases",
    "kms:ListGrants", "kms:ListKeyPolicies", "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:RetireGrant",
    "kms:RevokeGrant", "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion", "kms:TagResource",
    "kms:UntagResource", "kms:UpdateAlias", "kms:UpdateKeyDescription",
]  # fmt: skip


class Notifications(Construct):
    """SNS topic (KMS-encrypted with a customer-managed key, SSL enforced) and an optional email subscription."""

    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        policy = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="AccountAdministersAndUsesKeyThroughIam",
                    principals=[iam.AccountRootPrincipal()],
                    actions=_KEY_ACCOUNT_ACTIONS,
                    resources=["*"],  # in a key policy "*" means this key
                )
            ]
        )
        self.key = kms.Key(
            self,
            "TopicKey",
            description=f"Encrypts the {config.SNS_TOPIC_NAME} topic of {Aws.STACK_NAME}",
            enable_key_rotation=True,
            policy=policy,
            removal_policy=removal_policy(config),
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=config.SNS_TOPIC_NAME,
            display_name=config.SNS_TOPIC_DISPLAY_NAME,
            master_key=self.key,
            enforce_ssl=True,
        )
        if config.NOTIFICATION_EMAIL:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.NOTIFICATION_EMAIL))
