"""Cold import of each step handler, as a ratio to a bare ``import boto3``: a fresh interpreter per sample
(what a Lambda cold start pays before the first invocation), the samples interleaved so that machine load
hits every module alike, the median of several. The environment is the Lambda's as far as the imports can
tell (LAMBDA_TASK_ROOT set, tracing on), so the Powertools Tracer sets up X-Ray as it does in AWS; the handlers
are imported from a copy of functions/ as the stack packages it (infra/lambdas.py excludes __pycache__ and *.pyc)
with bytecode writing off, so every sample compiles our modules as each cold start in Lambda does (the asset holds
no bytecode, and the function's code directory is read-only: a function's writable scratch space is /tmp, AWS
Compute Blog, "Using larger ephemeral storage for AWS Lambda"); a stale __pycache__ that a test run left in
functions/ can then not make a sample cheaper than Lambda's, nor can the caller's PYTHONDONTWRITEBYTECODE change
what is measured."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from gpu_recovery.resources import FUNCTIONS_ASSET_EXCLUDE, FUNCTIONS_DIR

BASELINE = "import boto3"
# What every handler does at its import and uses on every call, whatever the step: a pydantic model class defined
# (its first one imports pydantic.main, pydantic.fields and pydantic.types) and the Powertools Logger and Metrics
# made (recovery.observability). With boto3, the least a handler's import can cost; without it (botocore's session
# and config, which the step clients need), the least it could cost if the steps used botocore alone.
_FLOOR_MODELS = """
from pydantic import BaseModel, ConfigDict
from aws_lambda_powertools import Logger, Metrics
class Request(BaseModel):
    model_config = ConfigDict(defer_build=True)
    id: str
class Response(BaseModel):
    model_config = ConfigDict(defer_build=True)
    ok: bool = False
Logger(), Metrics()
"""
FLOOR = "import boto3" + _FLOOR_MODELS
FLOOR_WITHOUT_BOTO3 = "import botocore.session, botocore.config" + _FLOOR_MODELS
# Peak RSS from /proc (VmHWM, in kB): getrusage's ru_maxrss would carry over the parent's peak.
# CPU seconds beside real ones: on a shared machine the real seconds also count waiting for a core, the CPU
# seconds (this process's, time.process_time) do not, so their ratio moves less with the machine's load.
PROBE = """
import json, re, time
started, cpu_started = time.perf_counter(), time.process_time()
{code}
seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
peak_kib = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
print(json.dumps({{"seconds": seconds, "cpu_seconds": cpu_seconds, "rss_mib": peak_kib / 1024}}))
"""
LAMBDA_ENVIRONMENT = {
    "LAMBDA_TASK_ROOT": str(FUNCTIONS_DIR),
    "AWS_LAMBDA_FUNCTION_NAME": "gpu-recovery-bench",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "gpu-recovery",
    "POWERTOOLS_METRICS_NAMESPACE": "EcsGpuRecovery",
    "PYTHONPATH": str(FUNCTIONS_DIR),
}


def handlers() -> list[str]:
    return sorted(path.stem for path in FUNCTIONS_DIR.glob("*.py"))


def _sample(code: str, asset: Path) -> dict[str, float]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_"))}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(code=code)],
        env=environment
        | LAMBDA_ENVIRONMENT
        | {"LAMBDA_TASK_ROOT": str(asset), "PYTHONPATH": str(asset), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


def measure(repeats: int) -> list[dict[str, Any]]:
    """One row per handler (and the floors): median import seconds (real and CPU) and RSS, and the ratios to the
    baseline's medians."""
    modules = {
        BASELINE: BASELINE,
        "floor: boto3, pydantic model, Powertools Logger and Metrics": FLOOR,
        "floor without boto3: botocore session and config instead": FLOOR_WITHOUT_BOTO3,
    } | {handler: f"import {handler}" for handler in handlers()}
    with tempfile.TemporaryDirectory() as scratch:
        asset = Path(scratch) / "asset"
        shutil.copytree(FUNCTIONS_DIR, asset, ignore=shutil.ignore_patterns(*FUNCTIONS_ASSET_EXCLUDE))
        for code in modules.values():  # a first run of each, outside the samples (the OS's file cache)
            _sample(code, asset)
        samples: dict[str, list[dict[str, float]]] = {module: [] for module in modules}
        for _ in range(repeats):
            for module, code in modules.items():
                samples[module].append(_sample(code, asset))
    medians = {
        module: {key: statistics.median(s[key] for s in runs) for key in ("seconds", "cpu_seconds", "rss_mib")}
        for module, runs in samples.items()
    }
    base = medians[BASELINE]
    return [
        {
            "module": module,
            "import_ms": round(m["seconds"] * 1000, 1),
            "ratio": round(m["seconds"] / base["seconds"], 2),
            "cpu_ms": round(m["cpu_seconds"] * 1000, 1),
            "cpu_ratio": round(m["cpu_seconds"] / base["cpu_seconds"], 2),
            "rss_mib": round(m["rss_mib"], 1),
        }
        for module, m in medians.items()
    ]
