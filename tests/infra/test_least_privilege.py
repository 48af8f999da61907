"""Issue 10, item 6: what the roles may touch is scoped to the deployment, not the account. EC2 and SSM actions
on instances need MANAGED_NODE_TAG, RestartJob passes only JOB_TASK_ROLES, and the service roles trust their
service only on behalf of this account's resources (confused-deputy conditions)."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from gpu_recovery.engine.iam_policy import Check, is_allowed
from gpu_recovery.stack_policies import StackPolicies
from infra.application import build_app
from infra.substitutions import LAMBDAS
from tests.infra.helpers import of_type

Resources = dict[str, dict[str, Any]]
REGION, ACCOUNT = "us-east-1", "123456789012"


def _policies(template: dict[str, Any]) -> StackPolicies:
    return StackPolicies.resolve(template, REGION, ACCOUNT, {m: m for m in LAMBDAS}, "recovery")


def _role(policies: StackPolicies, prefix: str) -> Any:
    (role,) = [principal for lid, principal in policies.roles.items() if lid.startswith(prefix)]
    return role


def test_instance_actions_need_the_managed_node_tag() -> None:
    _, stack = build_app(env={"GPU_RESET_ENABLED": "true", "TERMINATE_QUARANTINED": "true",
                              "MANAGED_NODE_TAG": "team=gpu-training"})  # fmt: skip
    machine = _role(_policies(Template.from_stack(stack).to_json()), "WorkflowRole")
    instance = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0"
    for action in ("ec2:RebootInstances", "ec2:TerminateInstances", "ssm:SendCommand"):
        assert is_allowed(machine.statements, Check(action, instance, {"aws:ResourceTag/team": "gpu-training"}))
        assert not is_allowed(machine.statements, Check(action, instance, {"aws:ResourceTag/team": "other"}))
        assert not is_allowed(machine.statements, Check(action, instance))


def test_restart_job_passes_only_the_configured_job_roles_to_ecs_tasks() -> None:
    _, stack = build_app(env={"JOB_TASK_ROLES": "training/gpu-job-*,inference-role"})
    restart = _role(_policies(Template.from_stack(stack).to_json()), "StepsRestartJobRole")
    to_ecs = {"iam:PassedToService": "ecs-tasks.amazonaws.com"}

    def may_pass(role: str, context: dict[str, str] = to_ecs) -> bool:
        return is_allowed(restart.statements, Check("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/{role}", context))

    assert may_pass("training/gpu-job-llm")
    assert may_pass("inference-role")
    assert not may_pass("admin")
    assert not may_pass("gpu-job-llm")  # not under the training/ path
    assert not may_pass("inference-role", {"iam:PassedToService": "lambda.amazonaws.com"})


def _trust(resources: Resources, prefix: str) -> dict[str, Any]:
    (role,) = [r for lid, r in of_type(resources, "AWS::IAM::Role").items() if lid.startswith(prefix)]
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    return dict(statement)


def test_service_roles_trust_their_service_only_for_this_accounts_resources(resources: Resources) -> None:
    for prefix, service, source in (
        ("WorkflowRole", "states.amazonaws.com", ":stateMachine:*"),
        ("TriggerTargetRole", "events.amazonaws.com", ":rule/*"),
        ("DcgmCheckTaskRole", "ecs-tasks.amazonaws.com", ":*"),
    ):
        trust = _trust(resources, prefix)
        assert trust["Principal"] == {"Service": service}
        assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        source_arn = trust["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Join"][1]
        assert source_arn[-1].endswith(source), prefix
        assert {"Ref": "AWS::AccountId"} in source_arn, prefix
