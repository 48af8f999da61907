"""GPU_RESET_ENABLED=true: the state machine may send AWS-RunShellScript to instances and read the result;
nothing else, and cdk-nag stays clean. Off (the default): no SSM permission at all."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra.application import build_app


def ssm_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if "ssm:" in str(statement["Action"])
    ]


def test_gpu_reset_grants_are_least_privilege_and_nag_clean() -> None:
    app, stack = build_app(env={"GPU_RESET_ENABLED": "true"})
    report = AwsSolutionsChecks().validate_scope(app)
    assert report.success, [f"{v.rule_name}: {v.description[:80]}" for v in report.violations]
    instances, document, get = ssm_statements(Template.from_stack(stack).to_json())
    # On instances: only those tagged MANAGED_NODE_TAG (tests/infra/test_least_privilege.py).
    assert "ssm:SendCommand" in instances["Action"]
    assert ":instance/*" in str(instances["Resource"])
    assert instances["Condition"] == {"StringEquals": {"aws:ResourceTag/ecs-gpu-recovery": "managed"}}
    assert document["Action"] == "ssm:SendCommand"
    assert "::document/AWS-RunShellScript" in str(document["Resource"])
    assert (get["Action"], get["Resource"]) == ("ssm:GetCommandInvocation", "*")


def test_no_ssm_permission_by_default(template: Template) -> None:
    assert ssm_statements(template.to_json()) == []
