"""LocalEngine's own behaviour: CDK-style substitutions, path() with Map iterations, the wait guard."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
from engine_harness import StartEngine, run

from gpu_recovery.engine.engine import substitute


def test_substitutions_resolve_like_cdk() -> None:
    resolved = substitute('{"a": "${Arn}", "b": "${!Literal}"}', {"Arn": "arn:x"})
    assert json.loads(resolved) == {"a": "arn:x", "b": "${Literal}"}


def test_an_unsubstituted_placeholder_fails_loudly() -> None:
    with pytest.raises(ValueError, match=r"\['Missing'\]"):
        substitute('{"a": "${Arn}", "b": "${Missing}"}', {"Arn": "arn:x"})


@pytest.mark.slow
def test_path_marks_map_iterations_with_sim_timings(start_engine: StartEngine, tmp_path: Path) -> None:
    definition = {
        "StartAt": "Nodes",
        "States": {
            "Nodes": {
                "Type": "Map",
                "ItemsPath": "$.waits",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Check",
                    "States": {"Check": {"Type": "Wait", "SecondsPath": "$", "End": True}},
                },
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }
    engine = start_engine()
    result = run(engine, tmp_path, definition, {"waits": [30, 60]})
    assert result["status"] == "SUCCEEDED"
    visits = engine.path(result["executionArn"])
    assert [(v.name, v.iteration) for v in visits if v.name != "Check"] == [("Nodes", None), ("Done", None)]
    checks = {v.iteration: (v.entered_at_sim, v.exited_at_sim) for v in visits if v.name == "Check"}
    assert checks == {0: (0.0, 30.0), 1: (0.0, 60.0)}
    nodes = visits[0]
    assert (nodes.entered_at_sim, nodes.exited_at_sim) == (0.0, 60.0)


@pytest.mark.slow
def test_wait_gives_up_after_its_real_time_guard(start_engine: StartEngine, tmp_path: Path) -> None:
    engine = start_engine()
    handlers = importlib.import_module("engine_test_handlers")  # on sys.path while the engine runs
    engine.deploy_function("hold", "engine_test_handlers.hold", {})
    call = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "hold"}}
    asl = tmp_path / "long.asl.json"
    asl.write_text(json.dumps({"StartAt": "Call", "States": {"Call": {**call, "End": True}}}))
    execution = engine.start_execution(engine.deploy_state_machine("long", asl, {}), "long-1", {})
    try:
        with pytest.raises(TimeoutError, match="RUNNING"):
            engine.wait(execution, timeout=0.2)
    finally:
        handlers.RELEASE.set()
    assert engine.wait(execution)["status"] == "SUCCEEDED"
