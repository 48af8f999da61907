"""The recovery state machine: the ASL file from statemachine/, wired to real ARNs, with an explicit role."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.cluster import ClusterArns
from infra.common import removal_policy, retention
from infra.config import Config
from infra.dcgm_task import DcgmCheckTask
from infra.nag import acknowledge, resource_finding
from infra.notifications import Notifications
from infra.substitutions import STEP_FUNCTIONS, definition_substitutions, function_arn_key
from infra.tables import RecoveryTables

DEFINITION_FILE = Path(__file__).resolve().parent.parent / "statemachine" / "recovery.asl.json"

# ecs:runTask.sync waits for the task through this managed rule, which Step Functions creates in our account.
_SYNC_RULE = "StepFunctionsGetEventsForECSTaskRule"
# The SSM document the ResetGpu state runs (GPU_RESET_ENABLED).
GPU_RESET_DOCUMENT = "AWS-RunShellScript"


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
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="GPU recovery state machine",
        )
        for statement in self._statements(
            stack=stack,
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
            }
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_file(str(DEFINITION_FILE)),
            definition_substitutions=substitutions,
            role=self.role,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
        )
        self._acknowledge(stack, config, functions, cluster)

    @staticmethod
    def _statements(
        *,
        stack: Stack,
        config: Config,
        functions: dict[str, lambda_.Function],
        tables: RecoveryTables,
        notifications: Notifications,
        cluster: ClusterArns,
        dcgm: DcgmCheckTask,
    ) -> list[iam.PolicyStatement]:
        def arn(service: str, resource: str, name: str) -> str:
            return stack.format_arn(service=service, resource=resource, resource_name=name)

        function_arns = [f.function_arn for f in functions.values()]
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
        gpu_reset: list[iam.PolicyStatement] = []
        if config.GPU_RESET_ENABLED:
            # AWS-owned documents have no account in their ARN.
            document = stack.format_arn(
                service="ssm", account="", resource="document", resource_name=GPU_RESET_DOCUMENT
            )
            gpu_reset = [
                iam.PolicyStatement(actions=["ssm:SendCommand"], resources=[document, arn("ec2", "instance", "*")]),
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
                actions=["ecs:UpdateContainerInstancesState", "ecs:DescribeContainerInstances"],
                resources=[cluster.container_instances],
                conditions=on_cluster,
            ),
            iam.PolicyStatement(actions=ec2_actions, resources=[arn("ec2", "instance", "*")]),
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
        findings = [resource_finding(stack, f"{f.function_arn}:*") for f in functions.values()]
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
            "GPU_RESET_ENABLED, using only the AWS-RunShellScript document) is known only at run time.",
            [resource_finding(stack, stack.format_arn(service="ec2", resource="instance", resource_name="*"))],
        )
