"""The synthesized stack's IAM, enforced by the local engine: no call the code makes is denied, a grant taken away
fails where AWS would fail, and no role grants an action that no call needs (least privilege both ways)."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest

from gpu_recovery import local_stack
from gpu_recovery import scenario as scenarios
from gpu_recovery.local_stack import LocalStack
from gpu_recovery.scenario import Event
from gpu_recovery.simulate import _fail, deployed, run

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
CHECKED_ROLES = ("Steps", "WorkflowRole")
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
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", message="No application metrics to publish")
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
            with mock.patch("record_node_state.finish_node", side_effect=RuntimeError("table gone")):
                description = stack.engine.wait(stack.engine.start_execution(stack.state_machine_arn, "err", event))
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


def without_run_task(template: dict[str, Any]) -> dict[str, Any]:
    """The template with ecs:RunTask taken out of the state machine role's policy."""
    template = copy.deepcopy(template)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and resource["Properties"]["Roles"][0]["Ref"].startswith("Workflow"):
            statements = resource["Properties"]["PolicyDocument"]["Statement"]
            resource["Properties"]["PolicyDocument"]["Statement"] = [
                s
                for s in statements
                if "ecs:RunTask" not in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
            ]
    return template


def test_removed_run_task_grant_fails_the_dcgm_check_with_access_denied() -> None:
    synthesize = local_stack.synthesized_template
    with (
        mock.patch.object(local_stack, "synthesized_template", lambda context: without_run_task(synthesize(context))),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        with deployed(scenarios.load("transient-xid79")) as (stack, fleet, _clock):
            event = _fail(fleet, Event(job="job-a", node="node-1"))
            arn = stack.engine.start_execution(stack.state_machine_arn, "no-run-task", event)
            stack.engine.wait(arn)
            failures = [e["taskFailedEventDetails"] for e in stack.engine.history(arn) if "taskFailedEventDetails" in e]
            denied = stack.engine.authorizer.denied
    assert next(f["error"] for f in failures if f["resource"] == "runTask.sync") == "ECS.AccessDeniedException"
    assert {check.action for _, check in denied} == {"ecs:RunTask"}
