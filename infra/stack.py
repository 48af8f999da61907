"""EcsGpuRecoveryStack: composes one construct per concern."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnMapping, CfnOutput, Stack
from constructs import Construct

from infra.cleanup import ExecutionCleanup
from infra.cluster import ClusterArns
from infra.config import Config
from infra.dcgm_task import DcgmCheckTask
from infra.lambdas import StepLambdas
from infra.monitoring import Monitoring
from infra.notifications import Notifications
from infra.readiness import AgentReadiness
from infra.tables import RecoveryTables
from infra.trigger import FailureTrigger
from infra.workflow import RecoveryWorkflow

CONSOLE_HOSTS = {
    "aws": "console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}


class EcsGpuRecoveryStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: Config, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description="ECS GPU Recovery: repairs GPU nodes after a failure",
                         **kwargs)  # fmt: skip
        cluster = ClusterArns.of(self, config.ECS_CLUSTER_NAME)
        tables = RecoveryTables(self, "Tables", config=config)
        notifications = Notifications(self, "Notifications", config=config)
        dcgm = DcgmCheckTask(self, "DcgmCheck", config=config)
        lambdas = StepLambdas(
            self,
            "Steps",
            config=config,
            tables=tables,
            cluster=cluster,
            dcgm_log_group_name=dcgm.log_group_name,
        )
        workflow = RecoveryWorkflow(
            self,
            "Workflow",
            config=config,
            functions=lambdas.functions,
            tables=tables,
            notifications=notifications,
            cluster=cluster,
            dcgm=dcgm,
        )
        trigger = FailureTrigger(
            self,
            "Trigger",
            cluster_arn=cluster.cluster,
            dcgm_task_family=config.dcgm_task_family,
            state_machine=workflow.state_machine,
        )
        cleanup = ExecutionCleanup(
            self,
            "Cleanup",
            state_machine=workflow.state_machine,
            function=lambdas.functions["cleanup_execution"],
            notifications=notifications,
        )
        readiness = AgentReadiness(
            self, "Readiness", cluster_arn=cluster.cluster, function=lambdas.functions["agent_connected"]
        )
        Monitoring(
            self,
            "Monitoring",
            config=config,
            state_machine=workflow.state_machine,
            functions=lambdas.functions,
            dead_letter_queue=trigger.dead_letter_queue,
            topic=notifications.topic,
            topic_key=notifications.key,
        )

        state_machine_arn = workflow.state_machine.state_machine_arn
        # The console's host differs per partition, as the ARNs do (the stack also deploys to aws-cn, aws-us-gov).
        console = CfnMapping(self, "Console", mapping={p: {"host": h} for p, h in CONSOLE_HOSTS.items()})
        outputs = {
            "StateMachineArn": state_machine_arn,
            "StateMachineConsoleUrl": f"https://{console.find_in_map(Aws.PARTITION, 'host')}/states/home"
            f"?region={Aws.REGION}#/statemachines/view/{state_machine_arn}",
            "TaskTableName": tables.task_table.table_name,
            "JobTableName": tables.job_table.table_name,
            "NodeTableName": tables.node_table.table_name,
            "NotificationTopicArn": notifications.topic.topic_arn,
            "DeadLetterQueueUrl": trigger.dead_letter_queue.queue_url,
            "CleanupDeadLetterQueueUrl": cleanup.dead_letter_queue.queue_url,
            "ReadinessDeadLetterQueueUrl": readiness.dead_letter_queue.queue_url,
            "DcgmTaskDefinitionArn": dcgm.task_definition_arn,
            # The tag the workflow's reboots, terminations and GPU resets require (doctor checks the instances).
            "ManagedNodeTag": config.MANAGED_NODE_TAG,
            # Doctor checks their roles; they are EventBridge targets, so the definition does not name them.
            "CleanupFunctionArn": lambdas.functions["cleanup_execution"].function_arn,
            "AgentConnectedFunctionArn": lambdas.functions["agent_connected"].function_arn,
        }
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
