"""`gpu-recovery diagnose FILE [--exit-code N] [--json]`: the analyzer's verdict for a human."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpu_recovery.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures" / "dcgm"
CASES = FIXTURES / "cases"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(["diagnose", *args])
    except SystemExit as exit_:  # argparse usage errors
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_envelope_log_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(CASES / "envelope_xid119_with_xid154.log"), "--json")
    assert code == 0
    doc = json.loads(out)
    assert set(doc) >= {"status", "action", "gpus", "reasons"}
    assert (doc["status"], doc["action"], doc["exitCode"]) == ("UNHEALTHY", "RESET_GPU", 0)
    [gpu] = doc["gpus"]
    assert gpu["index"] == 6
    assert [x["xid"] for x in gpu["xids"]] == [119, 154]


def test_raw_dcgmi_with_exit_code_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(CASES / "v33_r2_memory_fail_gpu3.json"), "--exit-code", "226")
    assert code == 0
    assert "verdict: UNHEALTHY  action: RESET_GPU" in out
    assert "GPU 3" in out
    assert "row remappings are pending" in out
    assert "because" in out


def test_isolate_with_contact_support_is_replace(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(CASES / "v42_r2_row_remap_failure_gpu3.json"), "--exit-code", "205", "--json")
    assert (code, json.loads(out)["action"]) == (0, "REPLACE")


def test_pass_is_healthy_none(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(CASES / "v46_r4_pass.json"), "--exit-code", "0", "--json")
    assert code == 0
    assert (json.loads(out)["status"], json.loads(out)["action"]) == ("HEALTHY", "NONE")


@pytest.mark.parametrize(
    ("fixture", "exit_code"),
    [
        ("v42_truncated.json", "226"),
        ("v46_killed.log", "137"),
        ("v33_runtime_error.json", "202"),
        ("v44_r3_all_skip.json", "0"),
        ("v5_unknown_version.json", "0"),
    ],
)
def test_inconclusive_exits_1_with_the_reason(capsys: pytest.CaptureFixture[str], fixture: str, exit_code: str) -> None:
    code, out, _ = run(capsys, str(CASES / fixture), "--exit-code", exit_code, "--json")
    assert code == 1
    doc = json.loads(out)
    assert (doc["status"], doc["action"]) == ("INCONCLUSIVE", "NONE")
    assert doc["reasons"][0]


def test_a_kernel_log_alone_says_what_its_xids_mean(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(CASES / "kernel_log_xid79_only.log"))
    assert code == 0
    assert "verdict: UNHEALTHY  action: REBOOT" in out
    assert "GPU at PCI:0000:10:1c: REBOOT" in out
    assert "catalog immediate action RESTART_BM -> REBOOT" in out


def test_a_kernel_log_without_repairable_xids_is_inconclusive_but_explained(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "dmesg.txt"
    log.write_text("[ 812.1] NVRM: Xid (PCI:0000:10:1c): 13, pid=4242, name=python, Graphics SM Warp Exception\n")
    code, out, _ = run(capsys, str(log))
    assert code == 1
    assert "XID 13 (ROBUST_CHANNEL_GR_EXCEPTION / ROBUST_CHANNEL_GR_ERROR_SW_NOTIFY): catalog immediate action " \
           "RESTART_APP" in out  # fmt: skip


@pytest.mark.parametrize(("version", "action"), [("4.2.3", "REPLACE"), ("4.6.0", "RESET_GPU")])
def test_dcgm_version_picks_the_severity_table(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, version: str, action: str
) -> None:
    doc = json.loads((CASES / "v42_r2_row_remap_failure_gpu3.json").read_text())
    del doc["metadata"]
    memory = next(t for c in doc["DCGM Diagnostic"]["test_categories"] for t in c["tests"] if t["name"] == "memory")
    del memory["results"][3]["warnings"][0]["error_severity"]
    path = tmp_path / "no-version.json"
    path.write_text(json.dumps(doc))
    exit_code = "205" if action == "REPLACE" else "226"
    code, out, _ = run(capsys, str(path), "--exit-code", exit_code, "--dcgm-version", version, "--json")
    assert (code, json.loads(out)["action"], json.loads(out)["dcgmVersion"]) == (0, action, version)


def test_since_leaves_older_xids_out(capsys: pytest.CaptureFixture[str]) -> None:
    log = str(CASES / "envelope_xid119_with_xid154.log")
    code, out, _ = run(capsys, log, "--since", "2026-11-29T23:00:00Z", "--json")
    assert (code, json.loads(out)["action"]) == (0, "NONE")
    assert any("stale" in r for r in json.loads(out)["reasons"])


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [("--dcgm-version", "four", "not a DCGM version: 'four'"), ("--since", "yesterday", "not an ISO-8601 time")],
)
def test_bad_flag_values_are_one_clear_line(
    capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    code, _, err = run(capsys, str(CASES / "v46_r4_pass.json"), flag, value)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_gpu_ids_say_which_gpus_the_task_used(capsys: pytest.CaptureFixture[str]) -> None:
    gpus = json.loads((FIXTURES / "gpus.json").read_text())
    code, out, _ = run(capsys, str(CASES / "envelope_v5_with_xid95.log"), "--gpu-ids", gpus[0]["uuid"])
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
