"""The recovery state machine: the ASL file from statemachine/, wired to real ARNs, with an explicit role."""

from __future__ import annotations

import json
import math

from aws_cdk import ArnFormat, Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

# The checkout's statemachine/, or the copy in the wheel (`gpu-recovery simulate` synthesizes from an install).
from gpu_recovery.resources import DEFINITION as DEFINITION_FILE
from infra.cluster import ClusterArns
from infra.common import removal_policy, retention, service_principal
from infra.config import Config
from infra.dcgm_task import DcgmCheckTask
from infra.gpu_reset_document import gpu_reset_document
from infra.nag import acknowledge, resource_finding
from infra.notifications import Notifications
from infra.substitutions import STEP_FUNCTIONS, definition_substitutions, function_arn_key
from infra.tables import RecoveryTables
from recovery.settings import (
    GPU_RESET_POLL_MAX_ATTEMPTS,
    GPU_RESET_POLL_SECONDS,
    TASK_STOP_POLL_MAX_ATTEMPTS,
    TASK_STOP_POLL_SECONDS,
)

# ecs:runTask.sync waits for the task through this managed rule, which Step Functions creates in our account.
_SYNC_RULE = "StepFunctionsGetEventsForECSTaskRule"


# Bounds the definition takes from the steps' settings: the task-stop polls, the GPU reset's polls.
TASK_STOP_POLL_BOUND_SECONDS = TASK_STOP_POLL_SECONDS * TASK_STOP_POLL_MAX_ATTEMPTS
GPU_RESET_POLL_BOUND_SECONDS = GPU_RESET_POLL_SECONDS * GPU_RESET_POLL_MAX_ATTEMPTS
# A Lambda step at worst: its timeout, plus the standard Retry's backoff (2+4+8+16+32 s).
_RETRY_BACKOFF_SECONDS = 62
# Lambda steps of one node at most (lock, analyses, records, release) and of the job (classify, restart, error).
_NODE_LAMBDA_STEPS = 10
_JOB_LAMBDA_STEPS = 4
# Checks of one node at most: the first, a re-check of an inconclusive one, after a GPU reset, after a reboot.
_CHECKS_PER_NODE = 4


def execution_timeout_seconds(config: Config) -> int:
    """The state machine's TimeoutSeconds: the longest a recovery can take when every bound is reached (every
    node waits out another repair's lock, needs every check, a GPU reset and the longest reboot), for a
    job of MAX_JOB_NODES nodes (the largest recovered), checked NODE_CHECK_CONCURRENCY at a time. Past it the
    execution is TIMED_OUT and CleanupExecution releases what it holds: no execution keeps a lock forever."""
    step = config.LAMBDA_TIMEOUT_SECONDS + _RETRY_BACKOFF_SECONDS
    node = (
        config.NODE_LOCK_MAX_WAITS * (config.NODE_LOCK_WAIT_SECONDS + step)
        + _CHECKS_PER_NODE * config.DCGM_TIMEOUT_SECONDS
        + GPU_RESET_POLL_BOUND_SECONDS
        + config.RECHECK_WAIT_SECONDS
        + config.longest_reboot_timeout()
        + _NODE_LAMBDA_STEPS * step
    )
    return math.ceil(_JOB_LAMBDA_STEPS * step + TASK_STOP_POLL_BOUND_SECONDS + job_rounds(config) * node)


def managed_node_condition(config: Config) -> dict[str, dict[str, str]]:
    """IAM condition limiting an action on an EC2 instance to those tagged MANAGED_NODE_TAG."""
    key, value = config.managed_node_tag
    return {"StringEquals": {f"aws:ResourceTag/{key}": value}}


def job_rounds(config: Config) -> int:
    """How many nodes each Map slot checks, one after another, for the largest job recovered."""
    return math.ceil(config.MAX_JOB_NODES / config.NODE_CHECK_CONCURRENCY)


def definition_with_timeout(config: Config) -> str:
    """The definition file with its TimeoutSeconds (a number from configuration, which the file itself cannot
    hold: `${...}` substitutions are strings)."""
    definition = json.loads(DEFINITION_FILE.read_text())
    return json.dumps({**definition, "TimeoutSeconds": execution_timeout_seconds(config)}, indent=2)


class RecoveryWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        functions: dict[str, lambda_.Function],
        tables: RecoveryTables,
        notifications: Notifications,
        cluster: ClusterArns,
        dcgm: DcgmCheckTask,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # What ResetGpu sends (GPU_RESET_ENABLED): reset the listed GPUs, nothing else.
        self.gpu_reset_document = ssm.CfnDocument(
            self, "GpuResetDocument", content=gpu_reset_document(), document_type="Command", document_format="JSON"
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{config.STACK_NAME}-recovery",
            retention=retention(config.LOG_RETENTION_DAYS),
            removal_policy=removal_policy(config),
        )
        # CDK cannot infer grants from a file definition, so the role lists exactly what the definition calls.
        self.role = iam.Role(
            self,
            "Role",
            # Not this state machine's own ARN: the role is created before it (a circular reference otherwise).
            assumed_by=service_principal("states.amazonaws.com", "states:stateMachine:*"),
            description="GPU recovery state machine",
        )
        for statement in self._statements(
            stack=stack,
            gpu_reset_document_name=self.gpu_reset_document.ref,
            config=config,
            functions=functions,
            tables=tables,
            notifications=notifications,
            cluster=cluster,
            dcgm=dcgm,
        ):
            self.role.add_to_policy(statement)

        substitutions = definition_substitutions(
            {
                "Partition": Aws.PARTITION,
                **{function_arn_key(name): functions[module].function_arn for module, name in STEP_FUNCTIONS.items()},
                "ClusterArn": cluster.cluster,
                "DcgmTaskDefinitionArn": dcgm.task_definition_arn,
                "DcgmContainerName": config.DCGM_CONTAINER_NAME,
                "NotificationTopicArn": notifications.topic.topic_arn,
                "JobTableName": tables.job_table.table_name,
                "TaskTableName": tables.task_table.table_name,
                "GpuResetDocumentName": self.gpu_reset_document.ref,
            }
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(definition_with_timeout(config)),
            definition_substitutions=substitutions,
            role=self.role,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
        )
        self._acknowledge(stack, config, functions, cluster)
        self._lock_liveness(stack, [self.role, *(functions[m].role for m in ("acquire_node",))])

    def _lock_liveness(self, stack: Stack, roles: list[iam.IRole | None]) -> None:
        """DescribeExecution of this state machine's executions: whether a lock's owner still runs (the job lock
        in the definition, node locks in LockNode). A policy of its own, because the state machine depends on
        the roles' default policies and its ARN in them would be a circular dependency."""
        executions = stack.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{self.state_machine.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        policy = iam.Policy(
            self,
            "LockLiveness",
            statements=[iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[executions])],
            roles=[role for role in roles if role is not None],
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            "Executions of this state machine only; their names exist only at run time.",
            [resource_finding(stack, executions)],
        )

    @staticmethod
    def _statements(
        *,
        stack: Stack,
        gpu_reset_document_name: str,
        config: Config,
        functions: dict[str, lambda_.Function],
        tables: RecoveryTables,
        notifications: Notifications,
        cluster: ClusterArns,
        dcgm: DcgmCheckTask,
    ) -> list[iam.PolicyStatement]:
        def arn(service: str, resource: str, name: str) -> str:
            return stack.format_arn(service=service, resource=resource, resource_name=name)

        function_arns = [functions[module].function_arn for module in STEP_FUNCTIONS]
        ec2_actions = ["ec2:RebootInstances"]
        if config.TERMINATE_QUARANTINED:
            ec2_actions.append("ec2:TerminateInstances")
        if dcgm.pass_roles:
            pass_role = iam.PolicyStatement(
                actions=["iam:PassRole"], resources=[role.role_arn for role in dcgm.pass_roles]
            )
        else:
            # An operator-supplied check task: its roles are unknown here, so allow passing roles to ECS tasks only.
            pass_role = iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=["*"],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        on_cluster = cluster.condition()
        instances = arn("ec2", "instance", "*")
        # Only the cluster's instances, by their tag: the Service Authorization Reference lists aws:ResourceTag/
        # ${TagKey} for ec2:RebootInstances, ec2:TerminateInstances and ssm:SendCommand on resource type instance.
        on_managed_nodes = managed_node_condition(config)
        gpu_reset: list[iam.PolicyStatement] = []
        if config.GPU_RESET_ENABLED:
            ec2_actions.append("ssm:SendCommand")
            document = arn("ssm", "document", gpu_reset_document_name)
            gpu_reset = [
                iam.PolicyStatement(actions=["ssm:SendCommand"], resources=[document]),
                # GetCommandInvocation supports no resource-level permissions.
                iam.PolicyStatement(actions=["ssm:GetCommandInvocation"], resources=["*"]),
            ]
        return [
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=function_arns + [f"{a}:*" for a in function_arns]
            ),
            iam.PolicyStatement(
                actions=["ecs:RunTask"],
                resources=[arn("ecs", "task-definition", f"{config.dcgm_task_family}:*")],
                conditions=on_cluster,
            ),
            iam.PolicyStatement(
                actions=["ecs:StopTask", "ecs:DescribeTasks"],
                resources=[cluster.tasks],
                conditions=on_cluster,
            ),
            iam.PolicyStatement(
                actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                resources=[arn("events", "rule", _SYNC_RULE)],
            ),
            pass_role,
            iam.PolicyStatement(
                actions=["ecs:UpdateContainerInstancesState"],
                resources=[cluster.container_instances],
                conditions=on_cluster,
            ),
            iam.PolicyStatement(actions=ec2_actions, resources=[instances], conditions=on_managed_nodes),
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:UpdateItem"],
                resources=[tables.job_table.table_arn, tables.task_table.table_arn],
            ),
            iam.PolicyStatement(actions=["sns:Publish"], resources=[notifications.topic.topic_arn]),
            iam.PolicyStatement(actions=["kms:GenerateDataKey", "kms:Decrypt"], resources=[notifications.key.key_arn]),
            *gpu_reset,
        ]

    def _acknowledge(
        self, stack: Stack, config: Config, functions: dict[str, lambda_.Function], cluster: ClusterArns
    ) -> None:
        findings = [resource_finding(stack, f"{functions[module].function_arn}:*") for module in STEP_FUNCTIONS]
        acknowledge(self.role, "AwsSolutions-IAM5", "Invoking the step Lambdas by version or alias (ARN:*).", findings)
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            "CloudWatch Logs delivery (logs:*LogDelivery, DescribeLogGroups...) and X-Ray have no resource-level "
            "permissions"
            + ("." if config.creates_dcgm_task else "; iam:PassRole covers the supplied DCGM task's roles, unknown "
               "here, and only towards ECS tasks (iam:PassedToService).")
            + (" ssm:GetCommandInvocation (GPU reset result) has no resource-level permissions."
               if config.GPU_RESET_ENABLED else ""),
            ["Resource::*"],
        )  # fmt: skip

        def ecs(resource: str, name: str) -> str:
            return resource_finding(stack, stack.format_arn(service="ecs", resource=resource, resource_name=name))

        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            "Every revision of the DCGM check task definition; tasks and container instances of the watched "
            "cluster, whose IDs exist only at run time (also conditioned on ecs:cluster).",
            [
                ecs("task-definition", f"{config.dcgm_task_family}:*"),
                resource_finding(stack, cluster.tasks),
                resource_finding(stack, cluster.container_instances),
            ],
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5",
            "The GPU node to reboot (or terminate, with TERMINATE_QUARANTINED; or to reset a GPU of over SSM, with "
            "GPU_RESET_ENABLED, using only the stack's GPU reset document) is known only at run time; only "
            "instances tagged MANAGED_NODE_TAG (aws:ResourceTag condition).",
            [resource_finding(stack, stack.format_arn(service="ec2", resource="instance", resource_name="*"))],
        )
