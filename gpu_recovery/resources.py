"""Where the files the CLI and the simulator read live: in a source checkout, the repository's own
functions/ (the Lambda code asset root), statemachine/ and scenarios/; in an installed wheel, the copies
packaged inside gpu_recovery (pyproject.toml maps them there), so `pipx install .` works outside the repo."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _directory(packaged: str, checkout: str) -> Path:
    inside = _PACKAGE / packaged
    return inside if inside.is_dir() else _PACKAGE.parent / checkout


FUNCTIONS_DIR = _directory("lambda_functions", "functions")
# What the Lambda code asset leaves out of FUNCTIONS_DIR (infra/lambdas.py); bench/cold_start.py packages it alike.
FUNCTIONS_ASSET_EXCLUDE = ("__pycache__", "*.pyc", "tests")
DEFINITION = _directory("statemachine", "statemachine") / "recovery.asl.json"
SCENARIO_DIR = _directory("scenarios", "scenarios")
