"""Cold import of each step handler, as a ratio to a bare ``import boto3``: a fresh interpreter per sample
(what a Lambda cold start pays before the first invocation), the samples interleaved so that machine load
hits every module alike, the median of several. The environment is the Lambda's as far as the imports can
tell (LAMBDA_TASK_ROOT set, tracing on), so the Powertools Tracer sets up X-Ray as it does in AWS."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

FUNCTIONS = Path(__file__).resolve().parent.parent / "functions"
BASELINE = "boto3"
# What every handler imports and uses on every call, whatever it does: boto3, pydantic as defining a model loads
# it (pydantic.main and pydantic.fields, which the first model class imports) and Powertools (Logger, Metrics):
# the least a handler's import can cost.
FLOOR = "boto3, pydantic.main, pydantic.fields, aws_lambda_powertools"
# Peak RSS from /proc (VmHWM, in kB): getrusage's ru_maxrss would carry over the parent's peak.
# CPU seconds beside real ones: on a shared machine the real seconds also count waiting for a core, the CPU
# seconds (this process's, time.process_time) do not, so their ratio moves less with the machine's load.
PROBE = """
import json, re, time
started, cpu_started = time.perf_counter(), time.process_time()
import {module}
seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
peak_kib = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
print(json.dumps({{"seconds": seconds, "cpu_seconds": cpu_seconds, "rss_mib": peak_kib / 1024}}))
"""
LAMBDA_ENVIRONMENT = {
    "LAMBDA_TASK_ROOT": str(FUNCTIONS),
    "AWS_LAMBDA_FUNCTION_NAME": "gpu-recovery-bench",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "gpu-recovery",
    "POWERTOOLS_METRICS_NAMESPACE": "EcsGpuRecovery",
    "PYTHONPATH": str(FUNCTIONS),
}


def handlers() -> list[str]:
    return sorted(path.stem for path in FUNCTIONS.glob("*.py"))


def _sample(module: str) -> dict[str, float]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_"))}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        env=environment | LAMBDA_ENVIRONMENT,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


def measure(repeats: int) -> list[dict[str, Any]]:
    """One row per handler (and the floor): median import seconds (real and CPU) and RSS, and the ratios to the
    baseline's medians."""
    modules = [BASELINE, FLOOR, *handlers()]
    for module in modules:  # compile the bytecode once, outside the samples
        _sample(module)
    samples: dict[str, list[dict[str, float]]] = {module: [] for module in modules}
    for _ in range(repeats):
        for module in modules:
            samples[module].append(_sample(module))
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
