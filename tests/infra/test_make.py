"""`make deploy` deploys where the user's AWS settings say, not to a region the Makefile picks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("target", "region"), [("deploy", "unset"), ("synth", "us-east-1")])
def test_only_offline_targets_default_the_region(tmp_path: Path, target: str, region: str) -> None:
    npx = tmp_path / "npx"
    npx.write_text('#!/bin/sh\necho "region=${AWS_DEFAULT_REGION:-unset} $*"\n')
    npx.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in {"AWS_DEFAULT_REGION", "AWS_REGION", "MAKEFLAGS"}}
    env["PATH"] = f"{tmp_path}{os.pathsep}{env['PATH']}"
    # -o: the installs count as done, so only the target's own command runs (the fake npx).
    done = subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "-o", "node_modules/.installed", target],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.startswith(f"region={region} cdk {target}")
