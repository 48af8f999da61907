"""Every AWS request the deployed code makes, per principal: what `gpu-recovery doctor` asks IAM
SimulatePrincipalPolicy about, and what docs/permissions.md lists.

A request is an API operation with its parameters (templates over a Deployment's names). What IAM authorizes for
it, the actions, resource ARNs and condition keys, comes from the local engine's own request mapping
(gpu_recovery/engine/iam_requests.py), so doctor simulates exactly what the engine enforces, with the same keys
(``ecs:cluster``, ``ecs:CreateAction``, ``aws:ResourceTag`` of a tagged instance). tests/workflow/test_iam_stack.py
checks that every action the engine authorized for a role in its runs is asked of that role here, so a new call
in the code cannot be left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gpu_recovery.engine.iam_policy import Check
from gpu_recovery.engine.iam_requests import Arns, checks_for, ecs_sync_rule_checks, with_resource_tags
from infra.substitutions import LAMBDAS, STEP_FUNCTIONS
from recovery.relaunch import UNDER_REPAIR_ATTRIBUTE

STATE_MACHINE = "StateMachine"
ANY = "*"  # an ID known only at run time: the check is on every resource of the kind


@dataclass(frozen=True)
class Deployment:
    """The names a deployment's requests are built from."""

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
    managed_node_tag: tuple[str, str]  # MANAGED_NODE_TAG: the tag the instance actions require
    gpu_reset_document: str  # the stack's SSM document that ResetGpu sends

    @property
    def arns(self) -> Arns:
        return Arns(self.region, self.account, self.partition)

    def names(self) -> dict[str, str]:
        machine = self.state_machine_arn.rsplit(":", 1)[-1]
        return {
            "cluster": self.cluster,
            "task_table": self.task_table,
            "job_table": self.job_table,
            "node_table": self.node_table,
            "topic": self.topic_arn,
            "dcgm_task_definition": self.dcgm_task_definition_arn,
            "dcgm_log_group": self.dcgm_log_group,
            "gpu_reset_document": self.gpu_reset_document,
            "executions": self.arns.arn("states", f"execution:{machine}:{ANY}"),
            **{
                f"function_{step}": self.arns.arn("lambda", f"function:{name}") for step, name in self.functions.items()
            },
        }


@dataclass(frozen=True)
class Call:
    service: str  # boto3's service name, as in the engine's request mapping
    operation: str
    params: Mapping[str, Any]  # strings are templates over Deployment.names()
    why: str
    setting: str = ""  # made only when this true/false setting is on

    def checks(self, d: Deployment) -> list[Check]:
        """What IAM authorizes for the request in this deployment; an instance carries the managed node tag."""
        params = _filled(self.params, d.names())
        checks = checks_for(d.arns, self.service, self.operation, params, lambda _: [])
        return [with_resource_tags(c, dict([d.managed_node_tag])) if ":instance/" in c.resource else c for c in checks]


def _filled(value: Any, names: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, list):
        return [_filled(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _filled(v, names) for k, v in value.items()}
    return value


def _table(table: str, *operations: str, why: str, index: str | None = None) -> tuple[Call, ...]:
    """Item operations on a table; ConditionCheckItem is a transaction item (DynamoDB authorizes it per item)."""

    def call(operation: str) -> Call:
        if operation == "ConditionCheckItem":
            items = [{"ConditionCheck": {"TableName": f"{{{table}}}"}}]
            return Call("dynamodb", "TransactWriteItems", {"TransactItems": items}, why)
        index_name = {"IndexName": index} if index else {}
        return Call("dynamodb", operation, {"TableName": f"{{{table}}}", **index_name}, why)

    return tuple(call(operation) for operation in operations)


_ITEM_WRITES = ("GetItem", "PutItem", "UpdateItem", "ConditionCheckItem")
_ON_CLUSTER = {"cluster": "{cluster}"}
_TASKS = {**_ON_CLUSTER, "tasks": [ANY]}
_INSTANCES = {**_ON_CLUSTER, "containerInstances": [ANY]}
_TOKEN = {"taskToken": ANY}
_UNDER_REPAIR = [{"name": UNDER_REPAIR_ATTRIBUTE, "targetId": ANY}]

CALLS: dict[str, tuple[Call, ...]] = {
    STATE_MACHINE: (
        *(
            Call("lambda", "Invoke", {"FunctionName": f"{{function_{name}}}"}, f"the {name} step")
            for name in STEP_FUNCTIONS.values()
        ),
        Call("ecs", "RunTask", {**_ON_CLUSTER, "taskDefinition": "{dcgm_task_definition}"}, "RunDcgmDiag"),
        Call("ecs", "DescribeTasks", _TASKS, "RunDcgmDiag (.sync) and DescribeStoppingTasks"),
        Call("ecs", "StopTask", {**_ON_CLUSTER, "task": ANY}, "StopJobTasks"),
        Call("ecs", "UpdateContainerInstancesState", _INSTANCES, "drain and reactivate nodes"),
        Call("ec2", "RebootInstances", {"InstanceIds": [ANY]}, "RebootInstance"),
        Call("ec2", "TerminateInstances", {"InstanceIds": [ANY]}, "TerminateInstance", "TERMINATE_QUARANTINED"),
        Call(
            "ssm",
            "SendCommand",
            {"DocumentName": "{gpu_reset_document}", "InstanceIds": [ANY]},
            "ResetGpu",
            "GPU_RESET_ENABLED",
        ),
        Call("ssm", "GetCommandInvocation", {}, "ResetGpu's poll", "GPU_RESET_ENABLED"),
        *_table("job_table", "GetItem", "UpdateItem", why="LockJob, ReadJobLockOwner, ReleaseJob"),
        *_table("task_table", "UpdateItem", why="JoinExistingRecovery"),
        Call("sns", "Publish", {"TopicArn": "{topic}"}, "NotifyRecoveryResult, NotifyRecoveryError, NotifyLastResort"),
        Call(
            "stepfunctions",
            "DescribeExecution",
            {"executionArn": "{executions}"},
            "CheckJobLockOwner: is the job lock's owner still running",
        ),
    ),
    "ClassifyFailure": (
        Call("ecs", "DescribeClusters", {"clusters": ["{cluster}"]}, "the cluster's ARN (Ecs.cluster_arn)"),
        Call("ecs", "DescribeTasks", _TASKS, "the failed task (manual request, tags) and the job's other tasks"),
        Call("ecs", "ListTasks", _ON_CLUSTER, "the job's other tasks, by task definition family"),
        Call("ecs", "DescribeTaskDefinition", {"taskDefinition": ANY}, "which containers are essential"),
        Call("ecs", "DescribeContainerInstances", _INSTANCES, "the nodes' EC2 instance ids"),
        Call("ec2", "DescribeNetworkInterfaces", {}, "the security groups of awsvpc tasks, for the restart"),
        *_table("task_table", *_ITEM_WRITES, "Query", why="the task rows"),
        *_table("task_table", "Query", why="the job's tasks (byJob)", index="byJob"),
        *_table("job_table", *_ITEM_WRITES, why="the job row"),
    ),
    "AcquireNode": (
        *_table("node_table", *_ITEM_WRITES, "Query", why="the node lock and history"),
        Call(
            "stepfunctions",
            "DescribeExecution",
            {"executionArn": "{executions}"},
            "is the node lock's owner still running",
        ),
        Call(
            "ecs",
            "PutAttributes",
            {**_ON_CLUSTER, "attributes": _UNDER_REPAIR},
            "mark the locked node under repair",
        ),
    ),
    "AnalyzeDiag": (
        Call("ecs", "DescribeTaskDefinition", {"taskDefinition": ANY}, "where the check task logs"),
        Call("ecs", "ListContainerInstances", _ON_CLUSTER, "the fleet breaker's cluster size"),
        Call("logs", "GetLogEvents", {"logGroupName": "{dcgm_log_group}", "logStreamName": ANY}, "the check's output"),
        *_table("node_table", *_ITEM_WRITES, "Query", why="verdict, history, repair slots"),
    ),
    "RecordNodeState": (
        Call(
            "ecs",
            "DeleteAttributes",
            {**_ON_CLUSTER, "attributes": _UNDER_REPAIR},
            "clear the under-repair mark of a verified node",
        ),
        *_table("node_table", *_ITEM_WRITES, "Query", why="node state and history"),
        *_table("job_table", *_ITEM_WRITES, why="node outcomes on the job"),
    ),
    "RestartJob": (
        # The job's task definitions are known only at run time; with tags, RunTask also tags the new tasks.
        Call(
            "ecs",
            "RunTask",
            {**_ON_CLUSTER, "taskDefinition": ANY, "tags": [{"key": "k", "value": "v"}]},
            "relaunch the job's tasks",
        ),
        *_table("task_table", *_ITEM_WRITES, why="the job's task rows"),
        *_table("task_table", "Query", why="the job's task ARNs (byJob): the state carries task ids", index="byJob"),
        *_table("job_table", *_ITEM_WRITES, why="the job outcome and its joined tasks"),
    ),
    "HandleError": (
        *_table("task_table", *_ITEM_WRITES, "Query", why="release the job's task rows"),
        *_table("task_table", "Query", why="the job's tasks (byJob)", index="byJob"),
        *_table("job_table", *_ITEM_WRITES, why="release the job lock"),
        *_table("node_table", *_ITEM_WRITES, "Query", why="release node locks and repair slots"),
        Call("ecs", "UpdateContainerInstancesState", _INSTANCES, "leave interrupted nodes drained"),
    ),
    "AwaitAgent": (
        *_table("node_table", "GetItem", "UpdateItem", why="store WaitForAgent's token, read the reboot"),
        Call("ecs", "DescribeContainerInstances", _INSTANCES, "is the rebooted node's agent back"),
        Call("stepfunctions", "SendTaskSuccess", _TOKEN, "end WaitForAgent when the agent is already back"),
    ),
    "AgentConnected": (
        *_table("node_table", "GetItem", "UpdateItem", why="record a disconnect, find WaitForAgent's token"),
        Call("stepfunctions", "SendTaskSuccess", _TOKEN, "end WaitForAgent when the agent is back"),
    ),
    "CleanupExecution": (
        *_table("task_table", *_ITEM_WRITES, why="mark the failed task ERROR"),
        *_table("job_table", *_ITEM_WRITES, "Scan", why="find and release the execution's job locks"),
        *_table("node_table", *_ITEM_WRITES, "Scan", why="find and release its node locks and repair slots"),
        Call("ecs", "UpdateContainerInstancesState", _INSTANCES, "leave interrupted nodes drained"),
        Call("sns", "Publish", {"TopicArn": "{topic}"}, "the alert for an execution that ended badly"),
    ),
}
assert set(CALLS) == {STATE_MACHINE, *LAMBDAS.values()}


def checks_for_principal(principal: str, settings: Mapping[str, str], deployment: Deployment) -> list[Check]:
    """What IAM must allow the principal under these settings (a setting-gated call only when the setting is
    true), leaving out invocations of step Lambdas the deployment does not have (reported on their own)."""
    calls = [
        c
        for c in CALLS[principal]
        if (not c.setting or settings.get(c.setting, "false").lower() == "true")
        and (c.operation != "Invoke" or c.params["FunctionName"][len("{function_") : -1] in deployment.functions)
    ]
    sync = ecs_sync_rule_checks(deployment.arns) if principal == STATE_MACHINE else []
    return [check for call in calls for check in call.checks(deployment)] + sync


def actions(principal: str) -> set[str]:
    """Every IAM action the principal's calls need, with every setting on (for the docs and the tests)."""
    example = Deployment(
        partition="aws", region="us-east-1", account="123456789012", cluster="c", task_table="t", job_table="j",
        node_table="n", topic_arn="arn:aws:sns:us-east-1:123456789012:t",
        dcgm_task_definition_arn="arn:aws:ecs:us-east-1:123456789012:task-definition/d:1", dcgm_log_group="g",
        functions={step: step for step in STEP_FUNCTIONS.values()},
        state_machine_arn="arn:aws:states:us-east-1:123456789012:stateMachine:m", managed_node_tag=("k", "v"),
        gpu_reset_document="r",
    )  # fmt: skip
    every_setting = {call.setting: "true" for call in CALLS[principal] if call.setting}
    return {check.action for check in checks_for_principal(principal, every_setting, example)}
