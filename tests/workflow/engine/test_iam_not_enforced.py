"""Correction ``iam_not_enforced``: every call a step Lambda or a state machine makes is authorized against its
role's policies, and a denied call fails as in AWS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from engine_harness import StartEngine

from gpu_recovery.engine import LocalEngine
from gpu_recovery.engine.iam_not_enforced import Principal

pytestmark = pytest.mark.slow

ROLE = "arn:aws:iam::123456789012:role/test"


def publish_machine(topic: str) -> dict[str, Any]:
    publish = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sns:publish",
        "Parameters": {"TopicArn": topic, "Message": "hello"},
        "End": True,
    }
    return {"StartAt": "Publish", "States": {"Publish": publish}}


def run_as(engine: LocalEngine, tmp_path: Path, definition: dict[str, Any], statements: list[dict[str, Any]]) -> dict:
    asl = tmp_path / f"{len(list(tmp_path.iterdir()))}.asl.json"
    asl.write_text(json.dumps(definition))
    machine = engine.deploy_state_machine(f"sm-{asl.stem}", asl, {})
    engine.authorizer.assign_state_machine(machine, Principal(ROLE, statements))
    return engine.wait(engine.start_execution(machine, "run-1", {}))


def topics() -> tuple[str, str]:
    sns = boto3.client("sns")
    return sns.create_topic(Name="allowed")["TopicArn"], sns.create_topic(Name="other")["TopicArn"]


def test_moto_still_authorizes_nothing(start_engine: StartEngine, tmp_path: Path) -> None:
    """Shows the moto behaviour. If this fails, moto enforces IAM in-process: drop the correction."""
    engine = start_engine(without=("iam_not_enforced",))
    _, other = topics()
    assert run_as(engine, tmp_path, publish_machine(other), [])["status"] == "SUCCEEDED"


def test_a_service_integration_runs_as_the_state_machine_role(start_engine: StartEngine, tmp_path: Path) -> None:
    engine = start_engine()
    allowed, other = topics()
    grant = [{"Effect": "Allow", "Action": "sns:Publish", "Resource": allowed}]
    assert run_as(engine, tmp_path, publish_machine(allowed), grant)["status"] == "SUCCEEDED"
    denied = run_as(engine, tmp_path, publish_machine(other), grant)
    assert denied["status"] == "FAILED"
    # SNS answers AuthorizationError; Step Functions names it under the optimized integration's prefix.
    assert denied["error"] == "SNS.AuthorizationErrorException"
    assert f"not authorized to perform: sns:Publish on resource: {other}" in denied["cause"]
    assert (ROLE, "sns:Publish") in engine.authorizer.used


def test_a_lambda_runs_as_its_own_role_and_gets_access_denied(start_engine: StartEngine, tmp_path: Path) -> None:
    engine = start_engine()
    boto3.client("ecs").create_cluster(clusterName="gpu")
    function = engine.deploy_function("describe", "engine_test_handlers.describe_cluster", {})
    cluster = "arn:aws:ecs:us-east-1:123456789012:cluster/gpu"
    function_role = "arn:aws:iam::123456789012:role/function"
    invoke_only = [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": function}]
    call = {"Type": "Task", "Resource": function, "Parameters": {"cluster": "gpu"}, "End": True}
    definition = {"StartAt": "Call", "States": {"Call": call}}

    # The function's role may read the cluster but not write its logs: the call works, the logs are lost.
    describe = [{"Effect": "Allow", "Action": "ecs:DescribeClusters", "Resource": cluster}]
    engine.authorizer.assign_function("describe", Principal(function_role, describe), "/aws/lambda/describe")
    assert run_as(engine, tmp_path, definition, invoke_only)["status"] == "SUCCEEDED"
    assert {check.action for role, check in engine.authorizer.denied if role == function_role} == {
        "logs:CreateLogStream"
    }

    # Without the grant the function's own call is denied: the handler raises AccessDeniedException.
    engine.authorizer.assign_function("describe", Principal(function_role + "2", []), "/aws/lambda/describe")
    failed = run_as(engine, tmp_path, definition, invoke_only)
    assert failed["status"] == "FAILED"
    assert failed["error"] == "AccessDeniedException"
    assert "ecs:DescribeClusters" in failed["cause"]

    # Nor may the state machine invoke a function its role does not name.
    assert run_as(engine, tmp_path, definition, [])["status"] == "FAILED"
