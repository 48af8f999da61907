"""The three DynamoDB tables: the workflow's locks, state and audit trail."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.common import removal_policy
from infra.config import Config
from recovery.schema import BY_JOB_INDEX, BY_JOB_KEYS, JOB_KEYS, NODE_KEYS, TASK_KEYS, TTL_ATTRIBUTE, Keys


class RecoveryTables(Construct):
    """ecs_task (PK taskArn, GSI byJob), ecs_job (PK jobId), ecs_node (PK nodeId, SK recordKey).

    Encryption: AWS-managed KMS key (aws/dynamodb). The data never leaves this account and only this stack's roles
    read it, so a customer-managed key would add a key policy and kms grants to every role without protecting
    anything more; KMS use is still logged in CloudTrail.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: Config) -> None:
        super().__init__(scope, construct_id)
        string = dynamodb.AttributeType.STRING

        def attribute(name: str | None) -> dynamodb.Attribute | None:
            return dynamodb.Attribute(name=name, type=string) if name else None

        def table(logical_id: str, name: str, keys: Keys) -> dynamodb.Table:
            return dynamodb.Table(
                self,
                logical_id,
                table_name=name,
                partition_key=dynamodb.Attribute(name=keys.partition, type=string),
                sort_key=attribute(keys.sort),
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                encryption=dynamodb.TableEncryption.AWS_MANAGED,
                time_to_live_attribute=TTL_ATTRIBUTE,
                removal_policy=removal_policy(config),
            )

        self.task_table = table("TaskTable", config.TASK_TABLE_NAME, TASK_KEYS)
        self.task_table.add_global_secondary_index(
            index_name=BY_JOB_INDEX,
            partition_key=dynamodb.Attribute(name=BY_JOB_KEYS.partition, type=string),
            sort_key=attribute(BY_JOB_KEYS.sort),
        )
        self.job_table = table("JobTable", config.JOB_TABLE_NAME, JOB_KEYS)
        self.node_table = table("NodeTable", config.NODE_TABLE_NAME, NODE_KEYS)
