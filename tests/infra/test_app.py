"""app.py end to end: exit code 2 and one line on a bad value; overrides reach the template."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk.assertions import Annotations, Match, Template

from infra.application import build_app
from tests.infra.helpers import of_type

ROOT = Path(__file__).resolve().parents[2]
ARN = "arn:aws:ecs:us-west-2:123456789012:task-definition/site-dcgm:4"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LAMBDA_MEMORY_SIZE": "abc"}, "LAMBDA_MEMORY_SIZE='abc' (from env) is invalid"),
        ({"DCGM_HEALTH_CHECK_TASK": ARN}, "DCGM_LOG_GROUP='' (from default) is invalid"),
    ],
)
def test_bad_value_exits_2_with_one_line(env: dict[str, str], expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_context_and_env_overrides_reach_the_template() -> None:
    _, stack = build_app(
        env={"TASK_TABLE_NAME": "env_task", "TERMINATE_QUARANTINED": "true", "NOTIFICATION_EMAIL": "ops@example.com",
             "DCGM_HEALTH_CHECK_TASK": ARN},
        context={"TASK_TABLE_NAME": "ctx_task", "DCGM_LOG_GROUP": "/ecs/site-dcgm", "STACK_NAME": "GpuRecoveryTest"},
    )  # fmt: skip
    template = Template.from_stack(stack)
    resources = template.to_json()["Resources"]
    assert stack.stack_name == "GpuRecoveryTest"
    template.has_resource_properties("AWS::DynamoDB::Table", {"TableName": "ctx_task"})  # context beats env
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"})
    # The supplied check task is used as is: none is created, and its log group is what AnalyzeDiag reads.
    template.resource_count_is("AWS::ECS::TaskDefinition", 0)
    (machine,) = of_type(resources, "AWS::StepFunctions::StateMachine").values()
    assert machine["Properties"]["DefinitionSubstitutions"]["DcgmTaskDefinitionArn"] == ARN
    for function in of_type(resources, "AWS::Lambda::Function").values():
        assert function["Properties"]["Environment"]["Variables"]["DCGM_LOG_GROUP"] == "/ecs/site-dcgm"
        assert function["Properties"]["Environment"]["Variables"]["TERMINATE_QUARANTINED"] == "true"
    actions = {
        action
        for policy in of_type(resources, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert "ec2:TerminateInstances" in actions


def test_synth_warns_when_a_second_stack_keeps_the_default_names() -> None:
    _, second = build_app(env={"STACK_NAME": "GpuRecoveryB"})
    Annotations.from_stack(second).has_warning(
        "*", Match.string_like_regexp("STACK_NAME=GpuRecoveryB keeps the default TASK_TABLE_NAME, JOB_TABLE_NAME")
    )
    _, first = build_app(env={})
    assert not Annotations.from_stack(first).find_warning("*", Match.string_like_regexp("keeps the default"))


def test_unknown_upper_case_context_key_warns() -> None:
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env={**os.environ, "CDK_CONTEXT_JSON": '{"DRYRUN": "true", "@aws-cdk/core:x": true, "lowercase": 1}'},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().splitlines() == [
        "warning: context key DRYRUN is not a setting and is ignored (did you mean DRY_RUN?); see docs/configuration.md"
    ]
