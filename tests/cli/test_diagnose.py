"""`gpu-recovery diagnose FILE [--exit-code N] [--json]`: the analyzer's verdict for a human."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpu_recovery.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "dcgm"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(["diagnose", *args])
    except SystemExit as exit_:  # argparse usage errors
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_envelope_log_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(FIXTURES / "v4_envelope_xid95.log"), "--json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) >= {"status", "action", "gpus", "reasons"}
    assert (doc["status"], doc["action"], doc["exitCode"]) == ("UNHEALTHY", "RESET_GPU", 226)
    [gpu] = doc["gpus"]
    assert gpu["index"] == 2
    assert gpu["xids"][0]["xid"] == 95
    assert gpu["failedTests"] == ["memory"]


def test_raw_dcgmi_with_exit_code_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(FIXTURES / "v3_memory_fail_gpu3.json"), "--exit-code", "226")
    assert code == 0
    assert "verdict: UNHEALTHY  action: RESET_GPU" in out
    assert "GPU 3" in out
    assert "row remapping is pending" in out
    assert "because" in out


def test_isolate_is_replace(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(FIXTURES / "v4_envelope_xid48_isolate.log"), "--json")
    assert (code, json.loads(out)["action"]) == (0, "REPLACE")


def test_pass_is_healthy_none(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(FIXTURES / "v4_pass.json"), "--exit-code", "0", "--json")
    assert code == 0
    assert (json.loads(out)["status"], json.loads(out)["action"]) == ("HEALTHY", "NONE")


@pytest.mark.parametrize(
    ("fixture", "exit_code"),
    [
        ("v4_truncated.log", "226"),
        ("v4_killed.log", "137"),
        ("v3_runtime_error.json", "226"),
        ("v4_skip_only.json", "0"),
    ],
)
def test_inconclusive_exits_1_with_the_reason(capsys: pytest.CaptureFixture[str], fixture: str, exit_code: str) -> None:
    code, out, _ = run(capsys, str(FIXTURES / fixture), "--exit-code", exit_code, "--json")
    assert code == 1
    doc = json.loads(out)
    assert (doc["status"], doc["action"]) == ("INCONCLUSIVE", "NONE")
    assert doc["reasons"][0]


def test_gpu_ids_say_which_gpus_the_task_used(capsys: pytest.CaptureFixture[str]) -> None:
    gpus = json.loads((FIXTURES / "gpus.json").read_text())
    code, out, _ = run(capsys, str(FIXTURES / "v4_envelope_xid95.log"), "--gpu-ids", gpus[0]["uuid"])
    assert code == 0
    assert "NOT used by the failed task" in out
    assert "GPU 2 was not used by the failed task; its fault still counts" in out


def test_missing_file_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, str(tmp_path / "nope.log"))
    assert code == 2
    assert "cannot read" in err


def test_no_file_argument_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(capsys)
    assert code == 2
