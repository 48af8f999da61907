"""dcgm-check/entrypoint.sh with stand-ins for dcgmi, nvidia-smi and dmesg: one GPU_RECOVERY_RESULT line that the
analyzer reads, dcgmi's exit code passed through."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from recovery.diagnosis import diagnose, parse_result
from recovery.models import RepairAction

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "dcgm-check" / "entrypoint.sh"
FIXTURES = Path(__file__).parent / "fixtures" / "dcgm"

pytestmark = pytest.mark.skipif(shutil.which("awk") is None, reason="the wrapper needs awk")


def stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def run_wrapper(tmp_path: Path, dcgmi_file: str, dcgmi_exit: int, kernel: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub(bin_dir, "nv-hostengine", "exit 0")
    stub(bin_dir, "dcgmi", f"cat '{FIXTURES / dcgmi_file}'\nexit {dcgmi_exit}")
    gpus = json.loads((FIXTURES / "gpus.json").read_text())
    smi = "\n".join(f"echo '{g['index']}, {g['uuid']}, {g['pciBusId']}'" for g in gpus)
    stub(bin_dir, "nvidia-smi", smi)
    (tmp_path / "kernel.log").write_text(kernel)
    stub(bin_dir, "dmesg", f"cat '{tmp_path / 'kernel.log'}'")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "DCGM_DIAG_LEVEL": "2"}
    return subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False)


def test_wrapper_prints_one_envelope_and_exits_with_dcgmis_code(tmp_path: Path) -> None:
    xid = next(line for line in (FIXTURES / "xids.log").read_text().splitlines() if "): 95, " in line)
    done = run_wrapper(tmp_path, "v4_memory_fail_gpu3.json", 226, f"[  1.0] boot\n[ 99.1] {xid}\n")
    assert done.returncode == 226
    marked = [line for line in done.stdout.splitlines() if line.startswith("GPU_RECOVERY_RESULT ")]
    assert len(marked) == 1
    envelope, problem = parse_result(done.stdout)
    assert problem is None
    assert envelope is not None
    assert (envelope["version"], envelope["dcgmiExitCode"], envelope["diagLevel"]) == (1, 226, 2)
    assert [g["index"] for g in envelope["gpus"]] == list(range(8))
    assert [(x["xid"], x["gpuIndex"]) for x in envelope["xids"]] == [(95, 1)]
    verdict = diagnose(done.returncode, done.stdout)
    assert verdict.action == RepairAction.RESET_GPU
    assert sorted(g.index for g in verdict.gpus) == [1, 3]


def test_wrapper_with_no_dcgmi_output_is_inconclusive(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_text("")
    done = run_wrapper(tmp_path, str(tmp_path / "empty.json"), 226, "")
    assert done.returncode == 226
    assert diagnose(done.returncode, done.stdout).status == "INCONCLUSIVE"
