"""`gpu-recovery doctor`: is this deployment ready for its first incident? One row per check: PASS, WARN or FAIL,
and the fix. Read-only: it changes nothing in the account."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from functools import cached_property, partial
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from gpu_recovery import aws_context
from gpu_recovery.asl import walk_states
from gpu_recovery.aws_context import AwsContext, ContextError
from gpu_recovery.cli_output import FAILED, OK, command, print_json, render_table
from gpu_recovery.engine import iam_policy
from gpu_recovery.iam_calls import STATE_MACHINE, Deployment, checks_for_principal
from infra.config import POWERTOOLS_LAYER_PARAMETER
from infra.substitutions import EVENT_FUNCTIONS, STEP_FUNCTIONS

NAME = "doctor"
PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
OUTPUTS = (
    "StateMachineArn", "TaskTableName", "JobTableName", "NodeTableName", "NotificationTopicArn", "DeadLetterQueueUrl",
    "CleanupDeadLetterQueueUrl", "ReadinessDeadLetterQueueUrl", "DcgmTaskDefinitionArn", "ManagedNodeTag",
    "CleanupFunctionArn", "AgentConnectedFunctionArn",
)  # fmt: skip
# The Lambdas EventBridge rules invoke: the definition does not name them, the stack's outputs do.
EVENT_FUNCTION_OUTPUTS = ("CleanupFunctionArn", "AgentConnectedFunctionArn")
SHOWN_SETTINGS = ("DRY_RUN", "GPU_RESET_ENABLED", "TERMINATE_QUARANTINED")
# What the check container needs on a real node (infra/dcgm_task.py, docs/diagnosis.md).
CHECK_CAPABILITIES = {"SYS_ADMIN", "SYSLOG"}
KERNEL_LOG_DEVICE = "/dev/kmsg"
# ECS reports a container instance's GPUs as a STRINGSET resource named GPU (one id per GPU).
GPU_RESOURCE = "GPU"
# SimulatePrincipalPolicy's EvalDecision for an allowed call.
ALLOWED = "allowed"
EVENTS_SERVICE = "events.amazonaws.com"


@dataclass(frozen=True)
class Route:
    """One EventBridge rule of the stack (infra/trigger.py, readiness.py, cleanup.py): the outputs naming its target
    and its dead-letter queue, and what an event left in that queue means."""

    name: str
    target_output: str
    queue_output: str
    lost: str
    invokes_lambda: bool = True


ROUTES = (
    Route("trigger", "StateMachineArn", "DeadLetterQueueUrl", "failure events could not start a recovery", False),
    Route("readiness", "AgentConnectedFunctionArn", "ReadinessDeadLetterQueueUrl", "agent events never reached "
          "AgentConnected (a rebooted node may have waited for its timeout)"),
    Route("cleanup", "CleanupFunctionArn", "CleanupDeadLetterQueueUrl", "failed executions were not cleaned up "
          "(their locks may still be held)"),
)  # fmt: skip


@dataclass(frozen=True)
class Check:
    check: str
    status: str
    detail: str
    fix: str = ""


def _error(error: ClientError | BotoCoreError) -> str:
    if isinstance(error, ClientError):
        return f"{error.response['Error'].get('Code')}: {error.response['Error'].get('Message', '')}"
    return str(error)


def simulate(iam: Any, role_arn: str, actions: list[str], resource: str, context: dict[str, str]) -> list[str]:
    """The actions IAM would not allow the role on the resource."""
    entries = [{"ContextKeyName": k, "ContextKeyValues": [v], "ContextKeyType": "string"} for k, v in context.items()]
    pages = iam.get_paginator("simulate_principal_policy").paginate(
        PolicySourceArn=role_arn, ActionNames=actions, ResourceArns=[resource], ContextEntries=entries
    )
    return [r["EvalActionName"] for page in pages for r in page["EvaluationResults"] if r["EvalDecision"] != ALLOWED]


class Doctor:
    def __init__(self, context: AwsContext) -> None:
        self.context = context

    def client(self, service: str) -> Any:
        return boto3.client(service)

    @cached_property
    def outputs(self) -> dict[str, str]:
        return self.context.stack_outputs

    @cached_property
    def functions(self) -> dict[str, dict[str, Any]]:
        """Step name (ClassifyFailure, ...) -> Lambda configuration, for every step Lambda the definition calls."""
        lambdas = self.client("lambda")
        found: dict[str, dict[str, Any]] = {}
        for _, state in walk_states(self.context.definition.get("States", {})):
            resource = str(state.get("Resource", ""))
            if ":lambda:" in resource and ":function:" in resource:
                config = lambdas.get_function_configuration(FunctionName=resource)
                step = STEP_FUNCTIONS.get(config.get("Handler", "").split(".")[0])
                if step:
                    found[step] = config
        for output in EVENT_FUNCTION_OUTPUTS:
            config = lambdas.get_function_configuration(FunctionName=self.outputs[output])
            found[EVENT_FUNCTIONS[config["Handler"].split(".")[0]]] = config
        return found

    @property
    def settings(self) -> dict[str, str]:
        config = self.functions.get("ClassifyFailure", {})
        return dict(config.get("Environment", {}).get("Variables", {}))

    def run(self) -> list[Check]:
        try:
            stack = self.client("cloudformation").describe_stacks(StackName=self.context.stack_name)["Stacks"][0]
        except (ClientError, BotoCoreError) as error:
            return [
                Check(
                    "stack", FAIL, f"{self.context.stack_name}: {_error(error)}",
                    "deploy it (make deploy), or name it with --stack-name / GPU_RECOVERY_STACK_NAME",
                )
            ]  # fmt: skip
        rows = [self.stack(stack)]
        for check in (
            self.step_lambdas, self.settings_row, self.permissions, self.powertools, self.cluster, self.check_task,
            self.routes, self.subscriptions,
        ):  # fmt: skip
            rows += list(_guarded(check))
        return rows

    # ---- checks ---------------------------------------------------------------------------------
    def stack(self, stack: dict[str, Any]) -> Check:
        status = stack["StackStatus"]
        missing = [name for name in OUTPUTS if not self.outputs.get(name)]
        if not status.endswith("_COMPLETE") or "ROLLBACK" in status:
            return Check("stack", FAIL, f"{stack['StackName']} is {status}", "look at the stack events, fix, deploy")
        if missing:
            return Check("stack", FAIL, f"outputs missing: {', '.join(missing)}", "deploy this version (make deploy)")
        return Check("stack", PASS, f"{stack['StackName']} {status}, {len(OUTPUTS)} outputs")

    def step_lambdas(self) -> Iterator[Check]:
        missing = [name for name in STEP_FUNCTIONS.values() if name not in self.functions]
        if missing:
            yield Check("step lambdas", FAIL, f"the state machine calls no {', '.join(missing)}", "deploy again")
        else:
            yield Check("step lambdas", PASS, f"{len(self.functions)} found, each with its role")

    def settings_row(self) -> Iterator[Check]:
        settings = self.settings
        if not settings:
            yield Check("settings", FAIL, "ClassifyFailure Lambda not found in the state machine", "deploy again")
            return
        shown = ", ".join(f"{name}={settings.get(name, '?')}" for name in SHOWN_SETTINGS)
        if settings.get("DRY_RUN") == "true":
            yield Check("settings", WARN, shown, "DRY_RUN=true decides but repairs nothing; deploy with DRY_RUN=false")
        else:
            yield Check("settings", PASS, shown)

    def deployment(self) -> Deployment:
        _, partition, _, region, account, *_ = self.context.state_machine_arn.split(":")
        return Deployment(
            partition=partition,
            region=region,
            account=account,
            cluster=self.context.cluster_name,
            task_table=self.outputs["TaskTableName"],
            job_table=self.outputs["JobTableName"],
            node_table=self.outputs["NodeTableName"],
            topic_arn=self.outputs["NotificationTopicArn"],
            dcgm_task_definition_arn=self.outputs["DcgmTaskDefinitionArn"],
            dcgm_log_group=self.settings.get("DCGM_LOG_GROUP", ""),
            functions={step: config["FunctionName"] for step, config in self.functions.items()},
            state_machine_arn=self.context.state_machine_arn,
            managed_node_tag=self.managed_node_tag,
            gpu_reset_document=next(
                (
                    str(state.get("Parameters", {}).get("DocumentName", ""))
                    for _, state in aws_context.walk_states(self.context.definition.get("States", {}))
                    if str(state.get("Resource", "")).endswith(":ssm:sendCommand")
                ),
                "",
            ),
        )

    @property
    def managed_node_tag(self) -> tuple[str, str]:
        key, _, value = self.outputs["ManagedNodeTag"].partition("=")
        return key, value

    def permissions(self) -> Iterator[Check]:
        deployment, iam = self.deployment(), self.client("iam")
        machine = self.client("stepfunctions").describe_state_machine(stateMachineArn=self.context.state_machine_arn)
        roles = {STATE_MACHINE: machine["roleArn"]} | {step: c["Role"] for step, c in self.functions.items()}
        for principal, role_arn in roles.items():
            groups: dict[tuple[str, tuple[tuple[str, str], ...]], set[str]] = {}
            for check in checks_for_principal(principal, self.settings, deployment):
                groups.setdefault((check.resource, tuple(sorted(check.context.items()))), set()).add(check.action)
            denied: list[str] = []
            try:
                for (resource, context), actions in groups.items():
                    refused = simulate(iam, role_arn, sorted(actions), resource, dict(context))
                    denied += [f"{action} on {resource}" for action in refused]
            except ClientError as error:
                yield Check(
                    f"permissions {principal}", WARN, f"cannot simulate: {_error(error)}",
                    "run doctor with a principal allowed iam:SimulatePrincipalPolicy on the stack's roles",
                )  # fmt: skip
                continue
            if denied:
                yield Check(
                    f"permissions {principal}", FAIL, "denied: " + "; ".join(denied),
                    f"grant them to {role_arn.rsplit('/', 1)[-1]} (docs/permissions.md), or deploy this version",
                )  # fmt: skip
            else:
                yield Check(f"permissions {principal}", PASS, f"{sum(map(len, groups.values()))} calls allowed")

    def powertools(self) -> Iterator[Check]:
        try:
            value = self.client("ssm").get_parameter(Name=POWERTOOLS_LAYER_PARAMETER)["Parameter"]["Value"]
        except ClientError as error:
            yield Check(
                "powertools layer", FAIL, f"{POWERTOOLS_LAYER_PARAMETER}: {_error(error)}",
                "Powertools publishes no layer for this release here: deploy in a region that has it",
            )  # fmt: skip
            return
        yield Check("powertools layer", PASS, value)

    @cached_property
    def gpu_instances(self) -> list[dict[str, Any]]:
        ecs = self.client("ecs")
        arns = [
            arn
            for page in ecs.get_paginator("list_container_instances").paginate(cluster=self.context.cluster)
            for arn in page["containerInstanceArns"]
        ]
        described = [
            ci
            for start in range(0, len(arns), 100)
            for ci in ecs.describe_container_instances(
                cluster=self.context.cluster, containerInstances=arns[start : start + 100]
            )["containerInstances"]
        ]
        return [ci for ci in described if gpu_count(ci)]

    def cluster(self) -> Iterator[Check]:
        clusters = self.client("ecs").describe_clusters(clusters=[self.context.cluster])["clusters"]
        if not clusters or clusters[0].get("status") != "ACTIVE":
            yield Check(
                "cluster", FAIL, f"{self.context.cluster} not found or not ACTIVE", "set ECS_CLUSTER_NAME right"
            )
            return
        gpus = self.gpu_instances
        disconnected = [ci["ec2InstanceId"] for ci in gpus if not ci.get("agentConnected")]
        if not gpus:
            yield Check(
                "cluster", FAIL, f"{self.context.cluster}: no container instance with GPUs",
                "register GPU instances (ECS-optimized GPU AMI) with the cluster",
            )  # fmt: skip
        elif disconnected:
            yield Check(
                "cluster", WARN, f"{len(gpus)} GPU instances; agent disconnected on {', '.join(disconnected)}",
                "check the ECS agent on those instances",
            )  # fmt: skip
        else:
            yield Check("cluster", PASS, f"{len(gpus)} GPU instances, agents connected")
        yield from self.node_tags(gpus)

    def node_tags(self, gpus: list[dict[str, Any]]) -> Iterator[Check]:
        """The deploy prerequisite: the workflow may reboot, terminate or GPU-reset only instances with the tag."""
        key, value = self.managed_node_tag
        ids = sorted(ci["ec2InstanceId"] for ci in gpus)
        tagged = {
            tag["ResourceId"]
            for start in range(0, len(ids), 200)
            for page in self.client("ec2")
            .get_paginator("describe_tags")
            .paginate(
                Filters=[{"Name": "resource-id", "Values": ids[start : start + 200]}, {"Name": "key", "Values": [key]}]
            )
            for tag in page["Tags"]
            if tag["Value"] == value
        }
        untagged = [i for i in ids if i not in tagged]
        if untagged:
            yield Check(
                "node tag", FAIL, f"{key}={value} missing on {', '.join(untagged)}: the workflow cannot reboot them",
                f"tag every GPU instance {key}={value} (the Auto Scaling group's tags, PropagateAtLaunch), or "
                "deploy with MANAGED_NODE_TAG set to the tag they carry",
            )  # fmt: skip
        elif ids:
            yield Check("node tag", PASS, f"{len(ids)} GPU instances tagged {key}={value}")

    def check_task(self) -> Iterator[Check]:
        arn = self.outputs["DcgmTaskDefinitionArn"]
        definition = self.client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]
        name = self.settings.get("DCGM_CONTAINER_NAME", "dcgm-check")
        container = next((c for c in definition["containerDefinitions"] if c["name"] == name), None)
        if container is None:
            yield Check("dcgm task", FAIL, f"{arn} has no container {name}", "set DCGM_CONTAINER_NAME to its name")
            return
        wanted = sum(int(r["value"]) for r in container.get("resourceRequirements", []) if r["type"] == GPU_RESOURCE)
        counts = sorted({gpu_count(ci) for ci in self.gpu_instances})
        if counts and wanted > counts[-1]:
            yield Check(
                "dcgm task", FAIL, f"reserves {wanted} GPUs; the cluster's instances have {counts}",
                f"deploy with DCGM_GPU_COUNT={counts[-1]}",
            )  # fmt: skip
        elif counts != [wanted]:
            yield Check(
                "dcgm task", WARN, f"reserves {wanted} GPUs; the cluster's instances have {counts}",
                "a check that reserves fewer GPUs than a node has does not test them all; one that reserves more "
                "cannot run there: keep one GPU count per cluster",
            )  # fmt: skip
        else:
            yield Check("dcgm task", PASS, f"{arn.rsplit('/', 1)[-1]} reserves {wanted} GPUs")
        linux = container.get("linuxParameters") or {}
        missing = sorted(CHECK_CAPABILITIES - set((linux.get("capabilities") or {}).get("add", [])))
        if KERNEL_LOG_DEVICE not in {d.get("containerPath") for d in linux.get("devices", [])}:
            missing.append(KERNEL_LOG_DEVICE)
        log = container.get("logConfiguration") or {}
        if (log.get("options") or {}).get("mode") != "blocking":
            missing.append("awslogs mode blocking")
        if missing:
            yield Check(
                "dcgm task access", WARN, f"the check container lacks {', '.join(missing)}",
                "give it what docs/diagnosis.md 'What the check container can read' lists",
            )  # fmt: skip
        group = self.settings.get("DCGM_LOG_GROUP") or (log.get("options") or {}).get("awslogs-group", "")
        groups = self.client("logs").describe_log_groups(logGroupNamePrefix=group)["logGroups"] if group else []
        if any(g["logGroupName"] == group for g in groups):
            yield Check("dcgm log group", PASS, group)
        else:
            yield Check(
                "dcgm log group", FAIL, f"{group or '(none)'} does not exist",
                "create it, or set DCGM_LOG_GROUP to the group the check task logs to",
            )  # fmt: skip

    def routes(self) -> Iterator[Check]:
        for route in ROUTES:
            yield from _guarded(partial(self.route, route), f"{route.name} rule")

    def route(self, route: Route) -> Iterator[Check]:
        """The rule is enabled and targets what it should, with a dead-letter queue that exists, is encrypted, lets
        the rule send to it and is empty; a Lambda target lets EventBridge invoke it from that rule (EventBridge
        user guide, "Using dead-letter queues to process undelivered events" and "Using resource-based policies for
        Amazon EventBridge": events.amazonaws.com with aws:SourceArn = the rule)."""
        events, target = self.client("events"), self.outputs[route.target_output]
        rules = [events.describe_rule(Name=n) for n in events.list_rule_names_by_target(TargetArn=target)["RuleNames"]]
        enabled = [r for r in rules if r["State"] == "ENABLED"]
        queue = self.queue(self.outputs[route.queue_output])
        if not enabled:
            disabled = f" ({', '.join(r['Name'] for r in rules)} disabled)" if rules else ""
            yield Check(
                f"{route.name} rule", FAIL, f"no enabled rule targets {_short(target)}{disabled}",
                "aws events enable-rule --name <rule>, or deploy again",
            )  # fmt: skip
        for rule in enabled:
            findings = list(self.rule_findings(route, rule, target, queue))
            yield from (Check(f"{route.name} rule", FAIL, f"{rule['Name']}: {f}", "deploy again") for f in findings)
            if not findings:
                yield Check(f"{route.name} rule", PASS, f"{rule['Name']} enabled, targets {_short(target)}")
        yield from self.queue_checks(route, queue, enabled)

    def rule_findings(
        self, route: Route, rule: dict[str, Any], target: str, queue: dict[str, str] | None
    ) -> Iterator[str]:
        targets = self.client("events").list_targets_by_rule(Rule=rule["Name"])["Targets"]
        entry = next((t for t in targets if t["Arn"] == target), None)
        if entry is None:  # removed since the rule was found by it
            yield f"no longer targets {_short(target)}"
            return
        dead_letter = (entry.get("DeadLetterConfig") or {}).get("Arn")
        if not dead_letter:
            yield "its target has no dead-letter queue: an event it cannot deliver is lost"
        elif queue is not None and dead_letter != queue["QueueArn"]:
            yield f"its target's dead-letter queue is {dead_letter}, not the stack's {queue['QueueArn']}"
        if not route.invokes_lambda:
            if not entry.get("RoleArn"):
                yield "its target has no role: EventBridge cannot start executions"
            return
        try:
            policy = self.client("lambda").get_policy(FunctionName=target)["Policy"]
        except ClientError as error:
            if error.response["Error"].get("Code") != "ResourceNotFoundException":
                raise
            policy = None  # a function without a resource policy
        if not allows(policy, EVENTS_SERVICE, "lambda:InvokeFunction", target, rule["Arn"]):
            yield f"{_short(target)}'s resource policy does not let {EVENTS_SERVICE} invoke it from this rule"

    def queue(self, url: str) -> dict[str, str] | None:
        """The queue's attributes, or None when it does not exist."""
        try:
            return dict(self.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])
        except ClientError as error:
            if error.response["Error"].get("QueryErrorCode") != "QueueDoesNotExist":
                raise
            return None

    def queue_checks(self, route: Route, queue: dict[str, str] | None, rules: list[dict[str, Any]]) -> Iterator[Check]:
        label, url = f"{route.name} dead-letter queue", self.outputs[route.queue_output]
        if queue is None:
            yield Check(label, FAIL, f"{url} does not exist", "deploy again: undelivered events would be lost")
            return
        name = queue["QueueArn"].rsplit(":", 1)[-1]
        # SSE-SQS (SqsManagedSseEnabled) or SSE-KMS (KmsMasterKeyId): SQS developer guide, "Encryption at rest".
        encrypted = queue.get("SqsManagedSseEnabled") == "true" or bool(queue.get("KmsMasterKeyId"))
        waiting = int(queue.get("ApproximateNumberOfMessages", "0"))
        refused = [
            r["Name"]
            for r in rules
            if not allows(queue.get("Policy"), EVENTS_SERVICE, "sqs:SendMessage", queue["QueueArn"], r["Arn"])
        ]
        if not encrypted:
            yield Check(
                label, FAIL, f"{name} is not encrypted at rest",
                f"aws sqs set-queue-attributes --queue-url {url} --attributes SqsManagedSseEnabled=true, or deploy",
            )  # fmt: skip
        if refused:
            yield Check(label, FAIL, f"{name}'s policy does not let {', '.join(refused)} send to it", "deploy again")
        if waiting:
            yield Check(
                label, FAIL, f"{name}: {waiting} messages: {route.lost}",
                "read them (aws sqs receive-message), fix the cause, then replay them (a failure: gpu-recovery start)",
            )  # fmt: skip
        if encrypted and not refused and not waiting:
            yield Check(label, PASS, f"{name}: empty, encrypted")

    def subscriptions(self) -> Iterator[Check]:
        topic = self.outputs["NotificationTopicArn"]
        subscriptions = self.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
        confirmed = [s for s in subscriptions if s["SubscriptionArn"].startswith("arn:")]
        if confirmed:
            yield Check("notifications", PASS, ", ".join(f"{s['Protocol']}:{s['Endpoint']}" for s in confirmed))
        else:
            pending = len(subscriptions)
            yield Check(
                "notifications", FAIL, "no confirmed subscription" + (f" ({pending} pending)" if pending else ""),
                "set NOTIFICATION_EMAIL and confirm the email AWS sends, or subscribe your paging tool to the topic",
            )  # fmt: skip


def gpu_count(container_instance: dict[str, Any]) -> int:
    resources = container_instance.get("registeredResources", [])
    return sum(len(r.get("stringSetValue", [])) for r in resources if r.get("name") == GPU_RESOURCE)


def _short(arn: str) -> str:
    """A state machine's or function's name from its ARN."""
    return arn.rsplit(":", 1)[-1]


def allows(policy: str | None, service: str, action: str, resource: str, source_arn: str) -> bool:
    """Whether a resource policy (JSON) lets the service principal make ``action`` on ``resource`` for
    ``source_arn``, evaluated as the local engine evaluates the stack's own resource policies: the service's request
    carries the source as aws:SourceArn and its account as aws:SourceAccount."""
    statements = iam_policy.for_service(json.loads(policy or "{}").get("Statement", []), service)
    context = {"aws:SourceArn": source_arn, "aws:SourceAccount": source_arn.split(":")[4]}
    return iam_policy.is_allowed(statements, iam_policy.Check(action, resource, context))


def _guarded(check: Callable[[], Iterator[Check]], name: str | None = None) -> Iterator[Check]:
    """One check's AWS error, or a policy it cannot read (ValueError: not JSON, or an element the policy evaluator
    does not support), is that check's FAIL, not the end of the report."""
    name = name or check.__name__.replace("_", " ")
    try:
        yield from check()
    except (ClientError, BotoCoreError, ContextError, KeyError, ValueError) as error:
        detail = _error(error) if isinstance(error, ClientError | BotoCoreError) else str(error)
        yield Check(name, FAIL, detail, "see the error; the other checks still ran")


@command(NAME)
def run(args: argparse.Namespace) -> int:
    rows = Doctor(AwsContext(args)).run()
    if args.json:
        print_json([asdict(r) for r in rows])
    else:
        print(render_table([[r.check, r.status, r.detail, r.fix] for r in rows], ["CHECK", "STATUS", "DETAIL", "FIX"]))
    return FAILED if any(r.status == FAIL for r in rows) else OK


def register(commands: Any) -> None:
    parser = commands.add_parser(
        NAME,
        help="check a deployment before its first incident: PASS/WARN/FAIL and the fix for each",
        description=(
            "Read-only checks of a deployed stack: the stack and its outputs; each role can make each call the code "
            "needs (IAM SimulatePrincipalPolicy over gpu_recovery.iam_calls); the Powertools layer parameter "
            "resolves here; the cluster has GPU container instances with connected agents; the DCGM task fits "
            "them, can read the kernel log and logs to an existing group; each EventBridge rule (trigger, "
            "readiness, cleanup) is enabled and targets what it should, with a dead-letter queue that exists, is "
            "encrypted, lets the rule send to it and is empty, and its Lambda lets EventBridge invoke it; "
            "the topic has a confirmed subscription; "
            "DRY_RUN, GPU_RESET_ENABLED, TERMINATE_QUARANTINED. Exit codes: 0 no FAIL (WARNs are advice), "
            "1 a check failed, 2 usage error."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    aws_context.add_arguments(parser)
    parser.set_defaults(func=run)
