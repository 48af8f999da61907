"""dcgm-check/entrypoint.sh with stand-ins for dcgmi, nvidia-smi and dmesg: one GPU_RECOVERY_RESULT line, valid
JSON whatever dcgmi prints, XID lines of the current boot deduplicated and capped, dcgmi's exit code passed
through."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from recovery.diagnosis import diagnose
from recovery.models import RepairAction, VerdictStatus

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "dcgm-check" / "entrypoint.sh"
FIXTURES = Path(__file__).parent / "fixtures" / "dcgm"
GPUS = json.loads((FIXTURES / "gpus.json").read_text())
# CloudWatch Logs' maximum event size (256 KB including 26 bytes of overhead): the result line must fit in one.
MAX_EVENT_BYTES = 262_144 - 26

pytestmark = pytest.mark.skipif(shutil.which("awk") is None, reason="the wrapper needs awk")


def stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def run_wrapper(
    tmp_path: Path, dcgmi_output: str, dcgmi_exit: int, kernel: str | None, gpus: list[dict] = GPUS, **env: str
) -> subprocess.CompletedProcess[str]:
    """``kernel`` None: dmesg is not permitted."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "dcgmi.out").write_text(dcgmi_output)
    stub(bin_dir, "nv-hostengine", "exit 0")
    stub(bin_dir, "dcgmi", f"cat '{tmp_path / 'dcgmi.out'}'\nexit {dcgmi_exit}")
    smi = "\n".join(f"echo '{g['index']}, {g['uuid']}, {g['pciBusId']}, 570.133.20'" for g in gpus)
    stub(bin_dir, "nvidia-smi", smi)
    if kernel is None:
        stub(bin_dir, "dmesg", "echo 'dmesg: read kernel buffer failed: Operation not permitted' >&2\nexit 1")
    else:
        (tmp_path / "kernel.log").write_text(kernel)
        stub(bin_dir, "dmesg", f"cat '{tmp_path / 'kernel.log'}'")
    environment = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "DCGM_DIAG_LEVEL": "2", **env}
    return subprocess.run(["sh", str(SCRIPT)], env=environment, capture_output=True, text=True, timeout=60, check=False)


def result_line(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    marked = [line for line in done.stdout.splitlines() if line.startswith("GPU_RECOVERY_RESULT ")]
    assert len(marked) == 1
    assert len(marked[0].encode()) < MAX_EVENT_BYTES
    envelope: dict[str, Any] = json.loads(marked[0].removeprefix("GPU_RECOVERY_RESULT "))
    return envelope


def kernel_line(gpu: int, code: int, message: str, stamp: str = "[ 4242.000001]") -> str:
    bus = GPUS[gpu]["pciBusId"][9:14].lower()
    return f"{stamp} NVRM: Xid (PCI:0000:{bus}): {code}, pid='<unknown>', name=<unknown>, {message}"


def test_envelope_carries_dcgmi_as_text_the_gpu_map_and_deduplicated_xids(tmp_path: Path) -> None:
    dcgmi = (FIXTURES / "cases" / "v42_r2_pending_row_remap_gpu2.json").read_text()
    repeated = [kernel_line(2, 95, "Uncontained: FBHUB. RST: Yes, D-RST: No", f"[ {n}.5]") for n in range(100, 130)]
    done = run_wrapper(tmp_path, dcgmi, 226, "[    0.000000] Linux version 6.1\n" + "\n".join(repeated) + "\n")
    assert done.returncode == 226
    envelope = result_line(done)
    assert (envelope["version"], envelope["dcgmiExitCode"], envelope["diagLevel"]) == (2, 226, 2)
    assert envelope["dcgmiOutput"] == dcgmi
    assert (envelope["dcgmiTruncated"], envelope["driverVersion"]) == (False, "570.133.20")
    assert envelope["xidSource"] == "dmesg"
    assert [g["index"] for g in envelope["gpus"]] == list(range(8))
    [entry] = envelope["xids"]
    assert (entry["xid"], entry["gpuIndex"], entry["count"]) == (95, 2, 30)
    assert entry["line"].startswith("[ 129.5] NVRM: Xid")  # the last one logged
    verdict = diagnose(done.returncode, done.stdout)
    assert (verdict.action, [g.index for g in verdict.gpus]) == (RepairAction.RESET_GPU, [2])


def test_whatever_dcgmi_prints_the_line_is_valid_json_and_the_kernel_still_counts(tmp_path: Path) -> None:
    nasty = 'Error: unable to connect "localhost"\tC:\\path \\u0041 \x01\x1b[31m red\r\n{ unbalanced\n'
    done = run_wrapper(tmp_path, nasty, 235, kernel_line(4, 79, "GPU has fallen off the bus.") + "\n")
    envelope = result_line(done)
    assert envelope["dcgmiOutput"].replace(" ", "") == nasty.replace("\x01", "").replace("\x1b", "").replace(" ", "")
    verdict = diagnose(done.returncode, done.stdout)
    assert (verdict.status, verdict.action) == (VerdictStatus.UNHEALTHY, RepairAction.REBOOT)


def test_huge_dcgmi_output_is_cut_and_marked(tmp_path: Path) -> None:
    done = run_wrapper(tmp_path, '{"DCGM Diagnostic": "' + "x" * 400_000 + '"}\n', 226, "", DCGMI_MAX_BYTES="50000")
    envelope = result_line(done)
    assert envelope["dcgmiTruncated"] is True
    assert len(envelope["dcgmiOutput"]) == 50_000
    verdict = diagnose(done.returncode, done.stdout)
    assert verdict.status == VerdictStatus.INCONCLUSIVE
    assert "size limit" in verdict.reasons[0]


def test_distinct_xid_lines_are_capped_keeping_the_latest(tmp_path: Path) -> None:
    lines = [kernel_line(1, 13, f"Graphics SM Warp Exception on (GPC {n}, TPC 1, SM 0)") for n in range(300)]
    done = run_wrapper(tmp_path, "", 0, "\n".join(lines) + "\n", XID_MAX_LINES="64")
    envelope = result_line(done)
    assert len(envelope["xids"]) == 64
    assert envelope["xidsDropped"] == 236
    assert "GPC 299," in envelope["xids"][-1]["line"]


def test_without_dmesg_a_mounted_host_log_counts_from_its_last_boot(tmp_path: Path) -> None:
    host = tmp_path / "messages"
    host.write_text(
        "Nov 28 03:12:44 ip-10-0-1-17 kernel: NVRM: Xid (PCI:0000:10:1c): 79, pid='<unknown>', name=<unknown>, gone\n"
        "Nov 28 03:20:01 ip-10-0-1-17 kernel: Linux version 6.1.112-124.190.amzn2023.x86_64\n"
        "Nov 28 03:25:11 ip-10-0-1-17 kernel: NVRM: Xid (PCI:0000:20:1c): 13, pid=77, name=python, SM Warp\n"
    )
    done = run_wrapper(tmp_path, "", 0, None, XID_LOG_FILE=str(host))
    envelope = result_line(done)
    assert envelope["xidSource"] == "file"
    assert [(x["xid"], x["gpuIndex"]) for x in envelope["xids"]] == [(13, 2)]


def test_without_any_kernel_log_the_check_still_reports(tmp_path: Path) -> None:
    done = run_wrapper(tmp_path, "", 226, None)
    assert "no XIDs collected" in done.stdout
    envelope = result_line(done)
    assert (envelope["xidSource"], envelope["xids"]) == ("none", [])
    assert diagnose(done.returncode, done.stdout).status == VerdictStatus.INCONCLUSIVE


def test_when_dcgmi_prints_nothing_its_stderr_says_why(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    done = run_wrapper(tmp_path, "", 0, "")
    stub(bin_dir, "dcgmi", "echo 'dcgmi: error while loading shared libraries: libdcgm.so.4' >&2\nexit 127")
    done = subprocess.run(["sh", str(SCRIPT)], env={"PATH": f"{bin_dir}:{os.environ['PATH']}"}, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 127
    assert "libdcgm.so.4" in result_line(done)["dcgmiStderr"]
    verdict = diagnose(done.returncode, done.stdout)
    assert verdict.status == VerdictStatus.INCONCLUSIVE
    assert "libdcgm.so.4" in verdict.reasons[0]


def test_gpus_in_different_pci_domains_are_told_apart(tmp_path: Path) -> None:
    # GB200: every GPU is bus 01, device 00 of its own PCI domain.
    gb200 = [{"index": i, "uuid": f"GPU-{i}", "pciBusId": f"0000000{8 + i:X}:01:00.0"} for i in range(4)]
    kernel = "NVRM: Xid (PCI:000a:01:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\n"
    envelope = result_line(run_wrapper(tmp_path, "", 0, kernel, gb200))
    assert [(x["xid"], x["gpuIndex"]) for x in envelope["xids"]] == [(79, 2)]
