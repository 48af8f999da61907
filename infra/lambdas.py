"""The step Lambdas and the cleanup Lambda: one shared code asset (functions/), one function and one
least-privilege role each."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

# The Lambda asset root: the checkout's functions/, or the copy in the wheel (`gpu-recovery simulate` synthesizes
# the stack from an installed package too).
from gpu_recovery.resources import FUNCTIONS_ASSET_EXCLUDE, FUNCTIONS_DIR
from infra.cluster import ClusterArns
from infra.common import removal_policy, retention
from infra.config import POWERTOOLS_LAYER_PARAMETER, Config
from infra.nag import acknowledge, resource_finding
from infra.substitutions import LAMBDAS
from infra.tables import RecoveryTables

RUNTIME = lambda_.Runtime.PYTHON_3_12
# The item operations the data layer (functions/recovery/tables.py and the table modules it joins) makes when a
# step reads and records state.
READ_WRITE = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]
ARCHITECTURE = lambda_.Architecture.X86_64


class StepLambdas(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        tables: RecoveryTables,
        cluster: ClusterArns,
        dcgm_log_group_name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        layer = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "PowertoolsLayer",
            ssm.StringParameter.value_for_string_parameter(self, POWERTOOLS_LAYER_PARAMETER),
        )
        code = lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=list(FUNCTIONS_ASSET_EXCLUDE))
        environment = {**config.lambda_environment(), "DCGM_LOG_GROUP": dcgm_log_group_name}
        removal = removal_policy(config)

        self.functions: dict[str, lambda_.Function] = {}
        for module, name in LAMBDAS.items():
            role = iam.Role(
                self,
                f"{name}Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"{name} Lambda of the GPU recovery workflow",
            )
            log_group = logs.LogGroup(
                self, f"{name}Logs", retention=retention(config.LOG_RETENTION_DAYS), removal_policy=removal
            )
            self.functions[module] = lambda_.Function(
                self,
                name,
                description=f"GPU recovery step: {module}",
                runtime=RUNTIME,
                architecture=ARCHITECTURE,
                handler=f"{module}.handler",
                code=code,
                layers=[layer],
                timeout=Duration.seconds(config.LAMBDA_TIMEOUT_SECONDS),
                memory_size=config.LAMBDA_MEMORY_SIZE,
                environment=environment,
                tracing=lambda_.Tracing.ACTIVE,
                log_group=log_group,
                role=role,
            )
            # The runtime writes the function's logs (and Powertools' EMF metrics) with the function's role.
            log_group.grant_write(role)

        fn = self.functions
        ecs_read = ["ecs:DescribeTasks", "ecs:DescribeContainerInstances"]
        self._allow(fn["classify_failure"], ecs_read, [cluster.tasks, cluster.container_instances], cluster)
        # The cluster is checked against the task's (the task ARN in a manual request may name another cluster).
        self._allow(fn["classify_failure"], ["ecs:DescribeClusters"], [cluster.cluster])
        # ListTasks naming no container instance is authorized against "*", limited by the ecs:cluster condition
        # (Service Authorization Reference, Amazon ECS: ListTasks, resource container-instance, key ecs:cluster).
        self._allow(fn["classify_failure"], ["ecs:ListTasks"], ["*"], cluster)
        # The security groups of the job's awsvpc tasks, so RestartJob can launch them into the same ones.
        self._allow(fn["classify_failure"], ["ec2:DescribeNetworkInterfaces"], ["*"])
        # Which containers are essential decides whether a task exited cleanly.
        self._allow(fn["classify_failure"], ["ecs:DescribeTaskDefinition"], ["*"])
        self._tables(fn["classify_failure"], READ_WRITE, tables.job_table)
        # Query: the job's recorded tasks (byJob index) say which families to list and what was restarted.
        self._tables(fn["classify_failure"], [*READ_WRITE, "dynamodb:Query"], tables.task_table)

        # PutItem: the history row of a lock taken over from an execution that no longer runs.
        self._tables(
            fn["acquire_node"], ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], tables.node_table
        )

        dcgm_log_group = stack.format_arn(
            service="logs", resource="log-group", resource_name=dcgm_log_group_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )  # fmt: skip
        self._allow(fn["analyze_diag"], ["logs:GetLogEvents"], [f"{dcgm_log_group}:log-stream:*"])
        self._allow(fn["analyze_diag"], ["ecs:DescribeTaskDefinition"], ["*"])
        # The fleet breaker counts the cluster's container instances.
        self._allow(fn["analyze_diag"], ["ecs:ListContainerInstances"], [cluster.cluster])
        self._tables(fn["analyze_diag"], READ_WRITE, tables.node_table)

        self._tables(fn["record_node_state"], [*READ_WRITE, "dynamodb:Query"], tables.node_table, tables.job_table)
        # The under-repair attribute: put when a node is locked, deleted when it is released verified.
        self._allow(fn["acquire_node"], ["ecs:PutAttributes"], [cluster.container_instances], cluster)
        self._allow(fn["record_node_state"], ["ecs:DeleteAttributes"], [cluster.container_instances], cluster)

        # After a reboot: AwaitAgent stores the wait's token and looks at the agent once; AgentConnected records a
        # disconnect and finds the token (functions/recovery/readiness.py).
        self._allow(fn["await_agent"], ["ecs:DescribeContainerInstances"], [cluster.container_instances], cluster)
        for module in ("await_agent", "agent_connected"):
            self._tables(fn[module], ["dynamodb:GetItem", "dynamodb:UpdateItem"], tables.node_table)
            # SendTaskSuccess has no resource-level permissions (Service Authorization Reference, Step Functions).
            self._allow(fn[module], ["states:SendTaskSuccess"], ["*"])

        task_definitions = stack.format_arn(service="ecs", resource="task-definition", resource_name="*")
        self._allow(fn["restart_job"], ["ecs:RunTask"], [task_definitions], cluster)
        fn["restart_job"].add_to_role_policy(
            iam.PolicyStatement(
                actions=["ecs:TagResource"],
                resources=[cluster.tasks],
                conditions={"StringEquals": {"ecs:CreateAction": "RunTask"}},
            )
        )
        # Only the jobs' own roles (JOB_TASK_ROLES), and only to ECS tasks (SAR, IAM: PassRole on resource type
        # role, condition key iam:PassedToService).
        job_roles = [stack.format_arn(service="iam", region="", resource="role", resource_name=r)
                     for r in config.job_task_roles]  # fmt: skip
        fn["restart_job"].add_to_role_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=job_roles,
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
        # Joined tasks are read from the job row (one consistent read with its join counter); the job's own task
        # ARNs from the byJob index (the state carries task ids).
        self._tables(
            fn["restart_job"],
            ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query"],
            tables.task_table,
            tables.job_table,
        )

        # HandleError and CleanupExecution leave an interrupted node drained (SUSPECT) for a human; HandleError
        # only writes (conditional updates and history rows), CleanupExecution first finds what the execution held.
        for module in ("handle_error", "cleanup_execution"):
            self._allow(fn[module], ["ecs:UpdateContainerInstancesState"], [cluster.container_instances], cluster)
        self._tables(
            fn["handle_error"],
            ["dynamodb:PutItem", "dynamodb:UpdateItem"],
            tables.task_table,
            tables.job_table,
            tables.node_table,
        )
        self._tables(
            fn["cleanup_execution"],
            [*READ_WRITE, "dynamodb:Scan"],
            tables.task_table,
            tables.job_table,
            tables.node_table,
        )

        self._acknowledge(
            stack, tables, cluster, f"{dcgm_log_group}:log-stream:*", task_definitions=task_definitions,
            job_roles=job_roles,
        )  # fmt: skip

    @staticmethod
    def _allow(
        function: lambda_.Function,
        actions: list[str],
        resources: list[str],
        cluster: ClusterArns | None = None,
    ) -> None:
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=actions, resources=resources, conditions=cluster.condition() if cluster else None
            )
        )

    @staticmethod
    def _tables(function: lambda_.Function, actions: list[str], *tables_: dynamodb.ITable) -> None:
        # Exactly the item operations the function's code makes (grant_read_write_data would add batch, scan,
        # delete and stream reads no step makes); tests/workflow/test_iam_stack.py holds both sides to it.
        for table in tables_:
            table.grant(function, *actions)

    def _acknowledge(
        self,
        stack: Stack,
        tables: RecoveryTables,
        cluster: ClusterArns,
        dcgm_log_streams: str,
        *,
        task_definitions: str,
        job_roles: list[str],
    ) -> None:
        task_index = resource_finding(stack, f"{tables.task_table.table_arn}/index/*")
        cluster_tasks = resource_finding(stack, cluster.tasks)
        star_reasons = {
            "classify_failure": " ecs:ListTasks for a whole cluster is authorized against * (limited to the cluster by "
            "the ecs:cluster condition); ec2:DescribeNetworkInterfaces and ecs:DescribeTaskDefinition have no "
            "resource-level permissions (they read the security groups of the job's awsvpc tasks, and which "
            "containers of the failed task's definition are essential).",
            "analyze_diag": " ecs:DescribeTaskDefinition has no resource-level permissions either (the check task's "
            "definition is read to find its log configuration).",
            **dict.fromkeys(
                ("await_agent", "agent_connected"),
                " states:SendTaskSuccess has no resource-level permissions (a task token names no resource).",
            ),
        }
        for module, function in self.functions.items():
            role = function.role
            assert role is not None
            acknowledge(
                function,
                "AwsSolutions-L1",
                "Python 3.12 is pinned on purpose: it matches the python312 build of the Powertools layer and the "
                "interpreter the handlers are tested with.",
            )
            acknowledge(
                role,
                "AwsSolutions-IAM5",
                "X-Ray PutTraceSegments/PutTelemetryRecords have no resource-level permissions."
                + star_reasons.get(module, ""),
                ["Resource::*"],
            )
            if module in {"classify_failure", "restart_job", "handle_error", "cleanup_execution"}:
                acknowledge(
                    role,
                    "AwsSolutions-IAM5",
                    "The task table grant includes its byJob index, used to list the tasks of a job.",
                    [task_index],
                )
        acknowledge(
            self.functions["classify_failure"].role,  # type: ignore[arg-type]
            "AwsSolutions-IAM5",
            "Tasks and container instances of the watched cluster only (ARN prefix plus ecs:cluster condition); "
            "their IDs are not known at deploy time.",
            [cluster_tasks, resource_finding(stack, cluster.container_instances)],
        )
        node_calls = {
            "acquire_node": "Marks the locked node under repair (PutAttributes)",
            "record_node_state": "Clears a verified node's under-repair mark (DeleteAttributes)",
            "await_agent": "Reads the rebooted node's agent (DescribeContainerInstances)",
            "handle_error": "Drains (UpdateContainerInstancesState) the interrupted nodes",
            "cleanup_execution": "Drains (UpdateContainerInstancesState) the interrupted nodes",
        }
        for module, calls in node_calls.items():
            acknowledge(
                self.functions[module].role,  # type: ignore[arg-type]
                "AwsSolutions-IAM5",
                f"{calls} of the watched cluster only (ARN prefix plus ecs:cluster condition); their IDs are not "
                "known at deploy time.",
                [resource_finding(stack, cluster.container_instances)],
            )
        acknowledge(
            self.functions["analyze_diag"].role,  # type: ignore[arg-type]
            "AwsSolutions-IAM5",
            "Log streams of the DCGM check log group are named after each check task at run time.",
            [resource_finding(stack, dcgm_log_streams)],
        )
        acknowledge(
            self.functions["restart_job"].role,  # type: ignore[arg-type]
            "AwsSolutions-IAM5",
            "RestartJob re-runs the job's own task definitions, unknown at deploy time: RunTask is limited to the "
            "cluster (ecs:cluster) and TagResource to the tasks it creates (ecs:CreateAction=RunTask); it passes "
            "only the roles JOB_TASK_ROLES names (patterns of the jobs' role names), only to ECS tasks.",
            [resource_finding(stack, task_definitions), cluster_tasks,
             *(resource_finding(stack, role) for role in job_roles if "*" in role)],
        )  # fmt: skip
