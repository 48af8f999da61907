"""What a cold start imports and builds (docs/benchmarks.md, cold import): no timing here, only which modules,
model classes and catalogs a fresh interpreter has after importing a handler as Lambda does (tracing on, as in
AWS), and what a traced handler's first invocation adds."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from bench.cold_start import LAMBDA_ENVIRONMENT, handlers

# Heavy modules no handler needs at import: the X-Ray SDK (with wrapt and asyncio under it) comes with the
# Tracer at a traced handler's first invocation; requests, httpx and sqlite3 are what the SDK would patch
# without patch_modules.
HEAVY = ("aws_xray_sdk", "wrapt", "asyncio", "requests", "httpx", "sqlite3")
PROBE = """
import json, sys
from pydantic import BaseModel
import {module}
from recovery import xid_catalog
print(json.dumps({{
    "modules": sorted(name for name in {heavy} if name in sys.modules),
    "built": sorted(
        f"{{module.__name__}}.{{name}}" for module in list(sys.modules.values())
        if module.__name__.startswith("recovery") for name, model in vars(module).items()
        if isinstance(model, type) and issubclass(model, BaseModel) and model.__pydantic_complete__
    ),
    "catalogs": sum(f.cache_info().currsize for f in (
        xid_catalog.xid_catalog, xid_catalog.nvlink5_decode, xid_catalog.dcgm_errors
    )),
}}))
"""
# Every pydantic class a handler's import creates (pydantic creates a class at its module's import, collecting its
# fields, even with defer_build), named module.Class.
CREATED = """
import json
import {module}
from pydantic import BaseModel

def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)

print(json.dumps(sorted(
    f"{{cls.__module__}}.{{cls.__qualname__}}" for cls in subclasses(BaseModel)
    if cls.__module__.startswith("recovery") or cls.__module__ == "{module}"
)))
"""
# What the steps share (recovery.models, recovery.settings), what the node steps share (recovery.requests), and
# each step's own models: a step creates the classes it parses or returns (and those they contain), never
# another step's.
SHARED = {
    "recovery.models": ["CamelModel", "ExecutionContext", "NodeRef", "Failure", "JobPlan", "Unfinished",
                        "NodeResult", "Notification"],
    "recovery.settings": ["StepSettings", "Settings"],
}  # fmt: skip
NODE_STEP = {"recovery.requests": ["GpuFinding", "Verdict", "Analysis", "CheckPlan", "StepError", "NodeStepRequest"]}
OWN: dict[str, dict[str, list[str]]] = {
    "acquire_node": NODE_STEP | {"acquire_node": ["NodeLock"]},
    "agent_connected": {"agent_connected": ["ContainerInstanceStateChange", "AgentEvent"]},
    "analyze_diag": NODE_STEP,
    "await_agent": {"await_agent": ["AgentWaitRequest", "AgentWait"]},
    "classify_failure": {
        "recovery.ecs_task": ["EcsContainer", "EcsTask", "TaskStateChangeEvent", "ManualRequest"],
        "classify_failure": ["Classification"],
    },
    "cleanup_execution": {"cleanup_execution": ["ExecutionStatusChange", "Cleanup"]},
    "handle_error": {"handle_error": ["ErrorReport"]},
    "record_node_state": NODE_STEP | {"record_node_state": ["RebootRecord"]},
    "restart_job": {"restart_job": ["JobOutcome", "JobRequest"]},
}
# A traced step invoked once, as Lambda does on a sampled-out request (so the SDK emits nothing).
FIRST_INVOCATION = """
import json, sys
import botocore.client
from recovery.observability import traced_step_handler

@traced_step_handler
def handler(event, context):
    return {"xray": "aws_xray_sdk" in sys.modules}

class Context:
    function_name, memory_limit_in_mb, aws_request_id = "f", 128, "r"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:f"

before = "aws_xray_sdk" in sys.modules
during = handler({"execution": {"name": "e"}}, Context())["xray"]
print(json.dumps({
    "before": before, "during": during,
    "botocore_patched": hasattr(botocore.client.BaseClient._make_api_call, "__wrapped__"),
}))
"""
SAMPLED_OUT = {"_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"}


def _run(code: str, environment: dict[str, str] = LAMBDA_ENVIRONMENT) -> Any:
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def _cold_import(module: str) -> dict[str, Any]:
    result: dict[str, Any] = _run(PROBE.format(module=module, heavy=HEAVY))
    return result


@pytest.mark.parametrize("module", handlers())
def test_a_cold_start_imports_no_heavy_module_builds_no_model_and_parses_no_catalog(module: str) -> None:
    loaded = _cold_import(module)
    assert loaded == {"modules": [], "built": [], "catalogs": 0}


def test_every_handler_is_listed_with_its_own_models() -> None:
    assert sorted(OWN) == handlers()


@pytest.mark.parametrize("module", handlers())
def test_a_cold_start_creates_its_own_model_classes_and_no_other_steps(module: str) -> None:
    created = _run(CREATED.format(module=module))
    expected = SHARED | OWN[module]
    assert created == sorted(f"{owner}.{name}" for owner, names in expected.items() for name in names)


def test_a_traced_handler_makes_the_tracer_at_its_first_invocation_and_it_patches_botocore() -> None:
    assert _run(FIRST_INVOCATION, LAMBDA_ENVIRONMENT | SAMPLED_OUT) == {
        "before": False,
        "during": True,
        "botocore_patched": True,
    }
