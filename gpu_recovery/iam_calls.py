"""Every AWS call the deployed code makes, per principal, as (IAM action, resource): what `gpu-recovery doctor`
asks IAM SimulatePrincipalPolicy about, and what docs/permissions.md lists. One catalog for both, so a new call in
the code is one new line here (tests/cli/test_doctor.py checks the catalog against the definition's integrations).

Resources are templates over a Deployment's names. ECS calls are simulated with the condition keys ECS sets on them
(Service Authorization Reference, Amazon ECS): ``ecs:cluster``, and ``ecs:CreateAction`` for tagging at RunTask.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.substitutions import STEP_FUNCTIONS

STATE_MACHINE = "StateMachine"
# The rule Step Functions creates in the account to follow ecs:runTask.sync tasks.
SYNC_RULE = "StepFunctionsGetEventsForECSTaskRule"


@dataclass(frozen=True)
class Deployment:
    """The names a deployment's ARNs are built from."""

    partition: str
    region: str
    account: str
    cluster: str
    task_table: str
    job_table: str
    node_table: str
    topic_arn: str
    dcgm_task_definition_arn: str
    dcgm_log_group: str
    functions: dict[str, str]  # step name (ClassifyFailure, ...) -> function name
    state_machine_arn: str

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        where = f"{self.region if region else ''}:{self.account if account else ''}"
        return f"arn:{self.partition}:{service}:{where}:{resource}"


@dataclass(frozen=True)
class Call:
    action: str
    resource: str  # a template: {cluster}, {task_table}, ... (Deployment fields), or "*"
    why: str
    setting: str = ""  # made only when this true/false setting is on
    condition: tuple[tuple[str, str], ...] = ()  # condition keys beyond ecs:cluster, as (key, value)

    def resource_arn(self, d: Deployment) -> str:
        if self.resource.startswith("{function:"):
            return d.arn("lambda", f"function:{d.functions[self.resource[len('{function:') : -1]]}")
        names = {
            "cluster_arn": d.arn("ecs", f"cluster/{d.cluster}"),
            "tasks": d.arn("ecs", f"task/{d.cluster}/*"),
            "container_instances": d.arn("ecs", f"container-instance/{d.cluster}/*"),
            "task_table": d.arn("dynamodb", f"table/{d.task_table}"),
            "job_table": d.arn("dynamodb", f"table/{d.job_table}"),
            "node_table": d.arn("dynamodb", f"table/{d.node_table}"),
            "task_index": d.arn("dynamodb", f"table/{d.task_table}/index/byJob"),
            "topic": d.topic_arn,
            "dcgm_task_definition": d.dcgm_task_definition_arn,
            "task_definitions": d.arn("ecs", "task-definition/*"),
            "dcgm_log_stream": d.arn("logs", f"log-group:{d.dcgm_log_group}:log-stream:*"),
            "instances": d.arn("ec2", "instance/*"),
            "sync_rule": d.arn("events", f"rule/{SYNC_RULE}"),
            "gpu_reset_document": d.arn("ssm", "document/AWS-RunShellScript", account=False),
            # arn:...:states:<region>:<account>:stateMachine:<name> -> its executions, execution:<name>:*
            "executions": d.arn("states", f"execution:{d.state_machine_arn.rsplit(':', 1)[-1]}:*"),
        }
        return "*" if self.resource == "*" else self.resource.format(**names)

    def context(self, d: Deployment) -> dict[str, str]:
        """The request context IAM sees for the call."""
        on_cluster = {"ecs:cluster": d.arn("ecs", f"cluster/{d.cluster}")} if self.action.startswith("ecs:") else {}
        return on_cluster | dict(self.condition)


def _table(table: str, *actions: str, why: str) -> tuple[Call, ...]:
    return tuple(Call(f"dynamodb:{a}", f"{{{table}}}", why) for a in actions)


_ITEM_WRITES = ("GetItem", "PutItem", "UpdateItem", "ConditionCheckItem")

CALLS: dict[str, tuple[Call, ...]] = {
    STATE_MACHINE: (
        *(
            Call("lambda:InvokeFunction", f"{{function:{name}}}", f"the {name} step")
            for name in STEP_FUNCTIONS.values()
        ),
        Call("ecs:RunTask", "{dcgm_task_definition}", "RunDcgmDiag"),
        Call("ecs:DescribeTasks", "{tasks}", "RunDcgmDiag (.sync) and DescribeStoppingTasks"),
        Call("ecs:StopTask", "{tasks}", "StopJobTasks"),
        Call("ecs:UpdateContainerInstancesState", "{container_instances}", "drain and reactivate nodes"),
        Call("events:PutRule", "{sync_rule}", "ecs:runTask.sync follows the check task through this rule"),
        Call("events:PutTargets", "{sync_rule}", "ecs:runTask.sync"),
        Call("events:DescribeRule", "{sync_rule}", "ecs:runTask.sync"),
        Call("ec2:RebootInstances", "{instances}", "RebootInstance"),
        Call("ec2:TerminateInstances", "{instances}", "TerminateInstance", "TERMINATE_QUARANTINED"),
        Call("ssm:SendCommand", "{instances}", "ResetGpu", "GPU_RESET_ENABLED"),
        Call("ssm:SendCommand", "{gpu_reset_document}", "ResetGpu", "GPU_RESET_ENABLED"),
        Call("ssm:GetCommandInvocation", "*", "ResetGpu's poll", "GPU_RESET_ENABLED"),
        *_table("job_table", "GetItem", "UpdateItem", why="LockJob, ReadJobLockOwner, ReleaseJob"),
        *_table("task_table", "UpdateItem", why="JoinExistingRecovery"),
        Call("sns:Publish", "{topic}", "NotifyRecoveryResult, NotifyRecoveryError, NotifyLastResort"),
        Call("states:DescribeExecution", "{executions}", "CheckJobLockOwner: is the job lock's owner still running"),
    ),
    "ClassifyFailure": (
        Call("ecs:DescribeClusters", "{cluster_arn}", "the cluster's ARN (Ecs.cluster_arn)"),
        Call("ecs:DescribeTasks", "{tasks}", "the failed task (manual request, tags) and the job's other tasks"),
        # A ListTasks naming no container instance is authorized against "*" with the ecs:cluster condition
        # (Service Authorization Reference, Amazon ECS, ListTasks).
        Call("ecs:ListTasks", "*", "the job's other tasks, by task definition family"),
        Call("ecs:DescribeTaskDefinition", "*", "which containers are essential (a clean exit or not)"),
        Call("ecs:DescribeContainerInstances", "{container_instances}", "the nodes' EC2 instance ids"),
        Call("ec2:DescribeNetworkInterfaces", "*", "the security groups of awsvpc tasks, for the restart"),
        *_table("task_table", *_ITEM_WRITES, "Query", why="the task rows"),
        *_table("task_index", "Query", why="the job's tasks (byJob)"),
        *_table("job_table", *_ITEM_WRITES, why="the job row"),
    ),
    "AcquireNode": (
        *_table("node_table", *_ITEM_WRITES, "Query", why="the node lock and history"),
        Call("states:DescribeExecution", "{executions}", "is the node lock's owner still running"),
    ),
    "AnalyzeDiag": (
        Call("ecs:DescribeTaskDefinition", "*", "where the check task logs"),
        Call("ecs:ListContainerInstances", "{cluster_arn}", "the fleet breaker's cluster size"),
        Call("logs:GetLogEvents", "{dcgm_log_stream}", "the check's output"),
        *_table("node_table", *_ITEM_WRITES, "Query", why="verdict, history, repair slots"),
    ),
    "RecordNodeState": (
        *_table("node_table", *_ITEM_WRITES, "Query", why="node state and history"),
        *_table("job_table", *_ITEM_WRITES, why="node outcomes on the job"),
    ),
    "RestartJob": (
        Call("ecs:RunTask", "{task_definitions}", "relaunch the job's tasks (task definitions known only at run time)"),
        Call("ecs:TagResource", "{tasks}", "RunTask with tags", condition=(("ecs:CreateAction", "RunTask"),)),
        *_table("task_table", *_ITEM_WRITES, "Query", why="the job's task rows"),
        *_table("task_index", "Query", why="joined tasks (byJob)"),
        *_table("job_table", *_ITEM_WRITES, why="the job outcome"),
    ),
    "HandleError": (
        *_table("task_table", *_ITEM_WRITES, "Query", why="release the job's task rows"),
        *_table("task_index", "Query", why="the job's tasks (byJob)"),
        *_table("job_table", *_ITEM_WRITES, why="release the job lock"),
        *_table("node_table", *_ITEM_WRITES, "Query", why="release node locks and repair slots"),
        Call("ecs:UpdateContainerInstancesState", "{container_instances}", "leave interrupted nodes drained"),
    ),
    "AwaitAgent": (
        *_table("node_table", "GetItem", "UpdateItem", why="store WaitForAgent's token, read the reboot"),
        Call("ecs:DescribeContainerInstances", "{container_instances}", "is the rebooted node's agent back"),
        Call("states:SendTaskSuccess", "*", "end WaitForAgent when the agent is already back"),
    ),
    "AgentConnected": (
        *_table("node_table", "GetItem", "UpdateItem", why="record a disconnect, find WaitForAgent's token"),
        Call("states:SendTaskSuccess", "*", "end WaitForAgent when the agent is back"),
    ),
    "CleanupExecution": (
        *_table("task_table", *_ITEM_WRITES, why="mark the failed task ERROR"),
        *_table("job_table", *_ITEM_WRITES, "Scan", why="find and release the execution's job locks"),
        *_table("node_table", *_ITEM_WRITES, "Scan", why="find and release its node locks and repair slots"),
        Call("ecs:UpdateContainerInstancesState", "{container_instances}", "leave interrupted nodes drained"),
        Call("sns:Publish", "{topic}", "the alert for an execution that ended badly"),
    ),
}


def calls_for(principal: str, settings: dict[str, str], deployment: Deployment) -> list[Call]:
    """The principal's calls under these settings (a setting-gated call only when the setting is true), leaving
    out invocations of step Lambdas the deployment does not have (reported on their own)."""
    return [
        c
        for c in CALLS[principal]
        if (not c.setting or settings.get(c.setting, "false").lower() == "true")
        and (not c.resource.startswith("{function:") or c.resource[len("{function:") : -1] in deployment.functions)
    ]
