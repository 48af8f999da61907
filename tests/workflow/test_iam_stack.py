"""The synthesized stack's IAM, enforced by the local engine: no call the code makes is denied, a grant taken away
fails where AWS would fail, and no role grants an action that no call needs (least privilege both ways)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from gpu_recovery import local_stack
from gpu_recovery import scenario as scenarios
from gpu_recovery.engine.iam_policy import Check, is_allowed
from gpu_recovery.engine.iam_requests import Arns, log_stream_arn
from gpu_recovery.iam_calls import STATE_MACHINE
from gpu_recovery.iam_calls import actions as doctor_actions
from gpu_recovery.local_stack import LocalStack
from gpu_recovery.scenario import Event
from gpu_recovery.simulate import _fail, deployed, run
from gpu_recovery.stack_policies import StackPolicies
from infra.substitutions import LAMBDAS

pytestmark = pytest.mark.slow

# Grants no call of the code makes in the local engine, each needed in AWS by the service itself or for inputs the
# simulated fleet does not produce.
IMPLICIT = {
    # Active tracing: Lambda and Step Functions send segments with the execution role (X-Ray developer guide).
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    # Step Functions logging to CloudWatch Logs (Step Functions developer guide, "IAM policies for logging").
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    # Publishing to the KMS-encrypted topic (SNS developer guide, "Encryption at rest": publisher permissions).
    "kms:GenerateDataKey", "kms:Decrypt",
    # Passing the roles of a task definition that has them (the DCGM check's; a job's), and tagging a relaunched
    # task that carries tags: the simulated fleet's task definitions have no roles and its jobs no tags.
    "iam:PassRole", "ecs:TagResource",
    # The security groups of awsvpc tasks (ClassifyFailure, for the relaunch): the simulated fleet runs bridge-mode
    # tasks; tests/unit/test_relaunch.py covers the awsvpc path.
    "ec2:DescribeNetworkInterfaces",
}  # fmt: skip
# The failure rule's target role (CDK names it after the state machine): EventBridge starts recoveries with it.
TRIGGER_ROLE = "TriggerTargetRole"
CHECKED_ROLES = ("Steps", "WorkflowRole", TRIGGER_ROLE)
REGION, ACCOUNT = "us-east-1", "123456789012"
# The Lambda runtime writes each function's logs with its role; the code makes no such call, doctor asks none.
RUNTIME_LOG_WRITES = {"logs:CreateLogStream", "logs:PutLogEvents"}
# Together these runs take every path of the definition that calls AWS: reboot, sibling stop, GPU reset and
# quarantine (GPU_RESET_ENABLED), and the error handler with a node locked.
RUNS = ("transient-xid79", "four-node-one-bad", "xid48-isolate-replace")
# Taken only when two executions race for one job's or node's lock (LockJob fails, ReadJobLockOwner reads the
# owner and CheckJobLockOwner asks whether it still runs; AcquireNode asks the same of a node lock's owner, and
# writes a history row when it takes the lock over from one that no longer runs), or
# when an execution ends FAILED, TIMED_OUT or ABORTED still holding what HandleError would have released
# (CleanupExecution: tests/workflow/test_failure_paths.py runs it with the same enforced policies), or
# when a rebooted node's agent is already back when AwaitAgent looks (the simulated agent disconnects at once; AWS's
# may still show connected: tests/unit/test_readiness.py covers that path).
RACE_ONLY = {
    "WorkflowRole": {"dynamodb:GetItem", "states:DescribeExecution"},
    "StepsAcquireNodeRole": {"states:DescribeExecution", "dynamodb:PutItem"},
    "StepsAwaitAgentRole": {"dynamodb:GetItem", "states:SendTaskSuccess"},
    "StepsCleanupExecutionRole": {
        "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Scan", "dynamodb:UpdateItem",
        "ecs:UpdateContainerInstancesState", "logs:CreateLogStream", "logs:PutLogEvents", "sns:Publish",
    },
}  # fmt: skip


@contextmanager
def captured() -> Iterator[tuple[list[LocalStack], list[dict[str, Any]]]]:
    stacks: list[LocalStack] = []
    templates: list[dict[str, Any]] = []
    deploy, synthesize = local_stack.deploy, local_stack.synthesized_template

    def capture_deploy(*args: Any) -> LocalStack:
        stacks.append(deploy(*args))
        return stacks[-1]

    def capture_template(context: Any) -> dict[str, Any]:
        templates.append(synthesize(context))
        return templates[-1]

    with (
        mock.patch("gpu_recovery.simulate.deploy", capture_deploy),
        mock.patch.object(local_stack, "synthesized_template", capture_template),
    ):
        yield stacks, templates


def race_only(role: str) -> set[str]:
    return next((actions for prefix, actions in RACE_ONLY.items() if role.startswith(prefix)), set())


def granted(template: dict[str, Any]) -> dict[str, set[str]]:
    """Actions each checked role's policies allow, by role logical ID."""
    actions: dict[str, set[str]] = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            for role in resource["Properties"]["Roles"]:
                if role["Ref"].startswith(CHECKED_ROLES):
                    for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                        listed = statement["Action"]
                        actions.setdefault(role["Ref"], set()).update([listed] if isinstance(listed, str) else listed)
    return actions


def test_no_call_is_denied_and_no_grant_is_unused() -> None:
    with captured() as (stacks, templates):
        for name in RUNS:
            report = run(scenarios.load(name))
            assert report.passed, "\n".join(report.failures)
        with deployed(scenarios.load("transient-xid79")) as (stack, fleet, _clock):
            event = _fail(fleet, Event(job="job-a", node="node-1"))
            # The node's outcome is not recorded (it stays locked) and the job decision fails: HandleError runs
            # with a node still locked.
            with (
                mock.patch("record_node_state.finish_node", side_effect=RuntimeError("table gone")),
                mock.patch("restart_job.decide_and_restart", side_effect=RuntimeError("table gone")),
            ):
                description = stack.wait(stack.start_execution("err", event))
            assert description["status"] == "FAILED"
    used: dict[str, set[str]] = {}
    for stack in stacks:
        assert stack.engine.authorizer.denied == []
        for role_arn, action in stack.engine.authorizer.used:
            used.setdefault(role_arn.rsplit("/", 1)[-1], set()).add(action)
    unused = {
        role: sorted(actions - used.get(role, set()) - IMPLICIT - race_only(role))
        for template in templates
        for role, actions in granted(template).items()
    }
    needless = {role: actions for role, actions in unused.items() if actions}
    assert not needless, f"grants no call needs: {needless}"
    # Doctor asks IAM about each call the code made here (gpu_recovery/iam_calls.py): a new one cannot be left out.
    principals = {"WorkflowRole": STATE_MACHINE, **{f"Steps{name}Role": name for name in LAMBDAS.values()}}
    unasked = {
        role: sorted(missing)
        for role, made in used.items()
        for prefix, principal in principals.items()
        if role.startswith(prefix) and (missing := made - doctor_actions(principal) - RUNTIME_LOG_WRITES)
    }
    assert not unasked, f"calls doctor does not check: {unasked}"


def without_grant(template: dict[str, Any], role_prefix: str, action: str) -> dict[str, Any]:
    """The template with ``action`` taken out of the policies of the roles whose logical ID starts with
    ``role_prefix`` (a statement left with no action goes too)."""
    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and resource["Properties"]["Roles"][0]["Ref"].startswith(role_prefix):
            document = resource["Properties"]["PolicyDocument"]
            for statement in document["Statement"]:
                listed = statement["Action"]
                statement["Action"] = [a for a in ([listed] if isinstance(listed, str) else listed) if a != action]
            document["Statement"] = [s for s in document["Statement"] if s["Action"]]
    return template


def without_cleanup_permission(template: dict[str, Any]) -> dict[str, Any]:
    """The template without the AWS::Lambda::Permission that lets the cleanup rule invoke CleanupExecution."""
    template = copy.deepcopy(template)
    template["Resources"] = {
        lid: r
        for lid, r in template["Resources"].items()
        if not (r["Type"] == "AWS::Lambda::Permission" and "CleanupRule" in json.dumps(r["Properties"]["SourceArn"]))
    }
    return template


@contextmanager
def changed_template(change: Callable[[dict[str, Any]], dict[str, Any]]) -> Iterator[None]:
    synthesize = local_stack.synthesized_template
    with mock.patch.object(local_stack, "synthesized_template", lambda context: change(synthesize(context))):
        yield


def test_removed_run_task_grant_fails_the_dcgm_check_with_access_denied() -> None:
    with (
        changed_template(lambda t: without_grant(t, "Workflow", "ecs:RunTask")),
        deployed(scenarios.load("transient-xid79")) as (stack, fleet, _clock),
    ):
        event = _fail(fleet, Event(job="job-a", node="node-1"))
        arn = stack.engine.start_execution(stack.state_machine_arn, "no-run-task", event)
        stack.engine.wait(arn)
        failures = [e["taskFailedEventDetails"] for e in stack.engine.history(arn) if "taskFailedEventDetails" in e]
        denied = stack.engine.authorizer.denied
    assert next(f["error"] for f in failures if f["resource"] == "runTask.sync") == "ECS.AccessDeniedException"
    assert {check.action for _, check in denied} == {"ecs:RunTask"}


def test_removed_start_execution_grant_denies_the_failure_rule() -> None:
    """EventBridge starts a recovery with the failure rule's target role; without states:StartExecution it cannot."""
    with (
        changed_template(lambda t: without_grant(t, TRIGGER_ROLE, "states:StartExecution")),
        deployed(scenarios.load("transient-xid79")) as (stack, fleet, _clock),
    ):
        event = _fail(fleet, Event(job="job-a", node="node-1"))
        with pytest.raises(ClientError, match=r"AccessDeniedException.*states:StartExecution"):
            stack.start_execution("no-start", event)
        assert stack.engine.authorizer.denied[0][1].action == "states:StartExecution"


def test_removed_lambda_permission_denies_the_cleanup_rule() -> None:
    """The cleanup rule invokes CleanupExecution through the function's resource policy (no role)."""
    with (
        changed_template(without_cleanup_permission),
        deployed(scenarios.load("transient-xid79")) as (stack, fleet, _clock),
    ):
        event = _fail(fleet, Event(job="job-a", node="node-1"))
        # The job decision fails too, so the execution ends FAILED (a node step's failure alone is caught).
        with (
            mock.patch("record_node_state.finish_node", side_effect=RuntimeError("table gone")),
            mock.patch("restart_job.decide_and_restart", side_effect=RuntimeError("table gone")),
        ):
            arn = stack.start_execution("err", event)
            with pytest.raises(ClientError, match=r"AccessDeniedException.*resource-based"):
                stack.wait(arn)
        ((rule, check),) = stack.engine.authorizer.denied
    assert check.action == "lambda:InvokeFunction"
    assert check.context["aws:SourceArn"] == rule


def awslogs_denied(template: dict[str, Any]) -> list[str]:
    """What the DCGM check's execution role may not do of what the awslogs driver does for a task: create the
    task's stream ``<prefix>/<container>/<task id>`` in the container's log group and put its events there (ECS
    developer guide, "Amazon ECS task execution IAM role" and "Using the awslogs log driver").

    The local stack runs the fleet's own check task definition, which has no execution role, so the default stack's
    (the one that creates the check task) is evaluated here, with the engine's evaluator and resolved names."""
    names = {module: local_stack.function_name(module) for module in LAMBDAS}
    policies = StackPolicies.resolve(template, REGION, ACCOUNT, names, "recovery")
    resources = template["Resources"]
    (definition,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    role = policies.roles[definition["ExecutionRoleArn"]["Fn::GetAtt"][0]]
    (container,) = definition["ContainerDefinitions"]
    options = container["LogConfiguration"]["Options"]
    group = resources[options["awslogs-group"]["Ref"]]["Properties"].get(
        "LogGroupName", options["awslogs-group"]["Ref"]
    )
    stream = f"{options['awslogs-stream-prefix']}/{container['Name']}/0123456789abcdef0123456789abcdef"
    arn = log_stream_arn(Arns(REGION, ACCOUNT), group, stream)
    return [a for a in ("logs:CreateLogStream", "logs:PutLogEvents") if not is_allowed(role.statements, Check(a, arn))]


@pytest.fixture(scope="module")
def default_template() -> dict[str, Any]:
    """The stack with its own DCGM check task (no DCGM_HEALTH_CHECK_TASK): the one with the execution role."""
    return local_stack.synthesized_template({"ECS_CLUSTER_NAME": "gpu-cluster"})


def test_the_dcgm_check_execution_role_writes_the_check_log(default_template: dict[str, Any]) -> None:
    assert awslogs_denied(default_template) == []


@pytest.mark.parametrize("action", ["logs:CreateLogStream", "logs:PutLogEvents"])
def test_removed_log_grant_denies_the_dcgm_check_log(default_template: dict[str, Any], action: str) -> None:
    assert awslogs_denied(without_grant(default_template, "DcgmCheckExecutionRole", action)) == [action]
