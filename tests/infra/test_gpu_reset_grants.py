"""GPU_RESET_ENABLED=true: the state machine may send the stack's GPU reset document (and no other) to the
cluster's instances and read the result; nothing else, and cdk-nag stays clean. Off (the default): no SSM
permission at all. The document's only parameter is the validated GPU index list."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra.application import build_app
from infra.gpu_reset_document import GPU_INDEX_LIST_PATTERN, GPU_RESET_PARAMETER
from tests.infra.helpers import of_type


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
    template = Template.from_stack(stack).to_json()
    instances, document, get = ssm_statements(template)
    # On instances: only those tagged MANAGED_NODE_TAG (tests/infra/test_least_privilege.py).
    assert "ssm:SendCommand" in instances["Action"]
    assert ":instance/*" in str(instances["Resource"])
    assert instances["Condition"] == {"StringEquals": {"aws:ResourceTag/ecs-gpu-recovery": "managed"}}
    assert document["Action"] == "ssm:SendCommand"
    (document_id,) = of_type(template["Resources"], "AWS::SSM::Document")
    assert document["Resource"]["Fn::Join"][1][-2:] == [":document/", {"Ref": document_id}]
    assert (get["Action"], get["Resource"]) == ("ssm:GetCommandInvocation", "*")


def test_no_ssm_permission_by_default(template: Template) -> None:
    assert ssm_statements(template.to_json()) == []


def test_the_gpu_reset_document_takes_only_a_validated_gpu_index_list(resources: dict[str, Any]) -> None:
    (document,) = of_type(resources, "AWS::SSM::Document").values()
    assert document["Properties"]["DocumentType"] == "Command"
    content = document["Properties"]["Content"]
    assert content["parameters"] == {
        GPU_RESET_PARAMETER: {
            "type": "String",
            "description": "GPU indexes to reset, comma-separated, e.g. 0,3",
            "allowedPattern": GPU_INDEX_LIST_PATTERN,
        }
    }
    (step,) = content["mainSteps"]
    assert "nvidia-smi --gpu-reset" in step["inputs"]["runCommand"][-1]
