"""Correction ``lambda_requires_docker``: step Lambdas run in-process, exceptions become function errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from engine_harness import StartEngine, run

pytestmark = pytest.mark.slow


def invoke(function: str, catch: list[str] | None = None) -> dict:
    call: dict = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function, "Payload.$": "$"},
        "OutputPath": "$.Payload",
        "End": True,
    }
    if catch:
        call["Catch"] = [{"ErrorEquals": catch, "ResultPath": "$.error", "Next": "Caught"}]
    return {"StartAt": "Call", "States": {"Call": call, "Caught": {"Type": "Pass", "End": True}}}


def test_moto_still_needs_docker_to_run_a_lambda(start_engine: StartEngine, tmp_path: Path) -> None:
    """Shows the moto behaviour. If this fails, moto runs Python Lambdas without docker: drop the correction."""
    engine = start_engine(without=("lambda_requires_docker",))
    arn = engine.deploy_function("echo", "engine_test_handlers.echo_context", {})
    result = run(engine, tmp_path, invoke(arn), {"x": 1})
    assert result["status"] == "FAILED"
    assert "docker" in result.get("cause", "").lower()


def test_handler_runs_in_process_with_a_lambda_context(start_engine: StartEngine, tmp_path: Path) -> None:
    engine = start_engine()
    arn = engine.deploy_function("echo", "engine_test_handlers.echo_context", {"STAGE": "test"})
    result = run(engine, tmp_path, invoke(arn), {"x": 1})
    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    assert output["event"] == {"x": 1}
    assert output["function_name"] == "echo"
    assert output["function_version"] == "$LATEST"
    assert output["invoked_function_arn"] == arn
    assert output["memory_limit_in_mb"] == 128
    assert output["log_group_name"] == "/aws/lambda/echo"
    assert output["log_stream_name"].endswith(output["aws_request_id"].replace("-", ""))
    assert 0 < output["remaining_ms"] <= 60_000


def test_raised_exception_is_caught_by_its_class_name(start_engine: StartEngine, tmp_path: Path) -> None:
    engine = start_engine()
    arn = engine.deploy_function("reject", "engine_test_handlers.reject", {})
    result = run(engine, tmp_path, invoke(arn, catch=["InvalidInput"]), {"x": 1})
    assert result["status"] == "SUCCEEDED", result
    error = json.loads(result["output"])["error"]
    assert error["Error"] == "InvalidInput"
    cause = json.loads(error["Cause"])
    assert cause["errorType"] == "InvalidInput"
    assert cause["errorMessage"] == "bad input: {'x': 1}"
    assert "engine_test_handlers.py" in cause["stackTrace"][0]


def test_uncaught_exception_fails_the_execution_with_its_class_name(start_engine: StartEngine, tmp_path: Path) -> None:
    engine = start_engine()
    arn = engine.deploy_function("reject", "engine_test_handlers.reject", {})
    result = run(engine, tmp_path, invoke(arn, catch=["States.Timeout"]), {})
    assert result["status"] == "FAILED"
    assert result["error"] == "InvalidInput"


def test_function_environment_is_set_and_restored(start_engine: StartEngine, tmp_path: Path) -> None:
    engine = start_engine()
    engine.deploy_function("echo", "engine_test_handlers.echo_context", {"GPU_RECOVERY_TEST_VAR": "1"})
    with pytest.raises(ValueError, match="GPU_RECOVERY_TEST_VAR"):
        engine.deploy_function("other", "engine_test_handlers.echo_context", {"GPU_RECOVERY_TEST_VAR": "2"})
    run(engine, tmp_path, invoke("echo"), {})
    assert os.environ["GPU_RECOVERY_TEST_VAR"] == "1"
    engine.__exit__(None, None, None)
    assert "GPU_RECOVERY_TEST_VAR" not in os.environ
