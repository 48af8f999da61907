"""What a cold start imports and builds (docs/benchmarks.md, cold import): no timing here, only which modules
and models a fresh interpreter has after importing a handler as Lambda does (tracing on, as in AWS)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.cold_start import LAMBDA_ENVIRONMENT, handlers

PROBE = """
import json, sys
import {module}
from recovery import models
print(json.dumps({{
    "modules": sorted(name for name in ("aws_xray_sdk", "requests", "httpx", "sqlite3") if name in sys.modules),
    "built": sorted(name for name, model in vars(models).items()
                    if isinstance(model, type) and issubclass(model, models.BaseModel) and model.__pydantic_complete__),
}}))
"""
TRACED = {"classify_failure", "restart_job", "analyze_diag"}


def _cold_import(module: str) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        env=LAMBDA_ENVIRONMENT,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, list[str]] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("module", handlers())
def test_a_cold_start_imports_the_x_ray_sdk_only_where_it_traces_and_patches_botocore_alone(module: str) -> None:
    loaded = _cold_import(module)
    assert loaded["modules"] == (["aws_xray_sdk"] if module in TRACED else [])


def test_no_model_is_built_before_a_handler_uses_it() -> None:
    assert _cold_import("classify_failure")["built"] == []
