"""diagnosis.diagnose beyond single cases: which GPUs a verdict names and resets, the failed task's GPUs, XIDs in
time (boot, reset, host logs), repeated XID lines, a version given from outside, the envelope's own contract."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from recovery.diagnosis import MAX_XIDS_PER_GPU, diagnose, gpu_summary, line_time, reset_targets
from recovery.models import RepairAction, VerdictStatus

FIXTURES = Path(__file__).parent / "fixtures" / "dcgm"
CASES = FIXTURES / "cases"
GPUS = json.loads((FIXTURES / "gpus.json").read_text())


def text(name: str) -> str:
    return (CASES / name).read_text()


def envelope(dcgmi: str, exit_code: int, xids: list[dict], **extra: object) -> str:
    body = {"version": 2, "dcgmiExitCode": exit_code, "dcgmiOutput": dcgmi, "xids": xids, "gpus": GPUS, **extra}
    return f"dcgm-check: dcgmi exited {exit_code}\nGPU_RECOVERY_RESULT {json.dumps(body)}\n"


def xid(gpu: int, code: int, message: str, stamp: str = "") -> dict:
    bus = GPUS[gpu]["pciBusId"][9:14].lower()
    line = f"{stamp} NVRM: Xid (PCI:0000:{bus}): {code}, pid='<unknown>', name=<unknown>, {message}".strip()
    return {"xid": code, "gpuIndex": gpu, "pciBusId": f"0000:{bus}", "line": line, "count": 1}


def test_envelope_names_the_gpu_its_uuid_and_why() -> None:
    v = diagnose(None, text("envelope_xid119_with_xid154.log"))  # the exit code comes from the envelope
    assert (v.exit_code, v.status, v.action) == (0, VerdictStatus.UNHEALTHY, RepairAction.RESET_GPU)
    [gpu] = v.gpus
    assert (gpu.index, gpu.uuid) == (6, GPUS[6]["uuid"])
    assert [x["xid"] for x in gpu.xids] == [119, 154]
    assert any("catalog immediate action RESET_GPU" in why for why in gpu.why)
    assert any("GPU Reset Required" in why for why in gpu.why)
    assert gpu_summary(v) == "GPU 6: XID 119, XID 154 -> RESET_GPU"
    assert reset_targets(v) == [6]


def test_multi_gpu_failure_names_each_gpu_and_resets_only_those_that_need_it() -> None:
    v = diagnose(226, text("v46_r3_two_gpus_reset_and_nvlink_down.json"))
    assert [(g.index, g.action) for g in v.gpus] == [(1, "RESET_GPU"), (4, "REBOOT")]
    assert reset_targets(v) == [1]
    assert gpu_summary(v) == "GPU 1: memory failed -> RESET_GPU; GPU 4: pcie failed -> REBOOT"


def test_a_failing_cpu_entity_is_not_gpu_0() -> None:
    v = diagnose(0, text("v46_r4_grace_cpu_eud_fail.json"))
    [cpu] = v.gpus
    assert (cpu.index, cpu.entity, cpu.action) == (None, "CPU 0", "REPLACE")
    assert reset_targets(v) == []
    assert gpu_summary(v) == "CPU 0: cpu_eud failed -> REPLACE"


def test_fault_on_a_gpu_the_task_did_not_use_still_counts_and_says_so() -> None:
    log = text("envelope_v5_with_xid95.log")
    v = diagnose(None, log, task_gpu_ids=[GPUS[0]["uuid"], GPUS[1]["uuid"]])
    assert v.action == RepairAction.RESET_GPU
    assert v.gpus[0].used_by_failed_task is False
    assert any("GPU 2 was not used by the failed task; its fault still counts" in r for r in v.reasons)
    used = diagnose(None, log, task_gpu_ids=[GPUS[2]["uuid"]])
    assert used.gpus[0].used_by_failed_task is True
    assert not any("not used" in r for r in used.reasons)


def test_raw_json_without_exit_code_is_judged_as_dcgmi_would_exit() -> None:
    v = diagnose(None, text("v42_r2_pending_row_remap_gpu2.json"))
    assert (v.exit_code, v.action) == (226, RepairAction.RESET_GPU)
    assert "no exit code given" in v.reasons[0]
    assert diagnose(None, text("v42_r2_row_remap_failure_gpu3.json")).exit_code == 205
    assert diagnose(None, text("v42_r2_pass.json")).status == VerdictStatus.HEALTHY
    assert diagnose(None, "just some log line").status == VerdictStatus.INCONCLUSIVE


@pytest.mark.parametrize(("version", "exit_code", "action"), [("4.2.3", 205, "REPLACE"), ("4.6.0", 226, "RESET_GPU")])
def test_the_dcgm_version_given_decides_when_the_output_does_not_say(version: str, exit_code: int, action: str) -> None:
    doc = json.loads(text("v42_r2_row_remap_failure_gpu3.json"))
    del doc["metadata"]
    memory = next(t for c in doc["DCGM Diagnostic"]["test_categories"] for t in c["tests"] if t["name"] == "memory")
    del memory["results"][3]["warnings"][0]["error_severity"]
    v = diagnose(exit_code, json.dumps(doc), dcgm_version=version)
    assert (v.dcgm_version, v.action.value) == (version, action)
    reported = json.loads(text("v42_r2_row_remap_failure_gpu3.json"))  # the output's own version wins
    assert diagnose(205, json.dumps(reported), dcgm_version="4.6.0").dcgm_version == "4.2.3"


def test_unknown_envelope_version_is_inconclusive() -> None:
    v = diagnose(0, "GPU_RECOVERY_RESULT " + json.dumps({"version": 9, "dcgmiOutput": text("v42_r2_pass.json")}))
    assert v.status == VerdictStatus.INCONCLUSIVE
    assert "envelope version 9" in v.reasons[0]


def test_version_1_envelope_with_embedded_dcgmi_json_is_still_read() -> None:
    body = {"version": 1, "dcgmiExitCode": 0, "dcgmi": json.loads(text("v42_r2_pass.json")), "xids": [], "gpus": GPUS}
    assert diagnose(None, f"GPU_RECOVERY_RESULT {json.dumps(body)}").status == VerdictStatus.HEALTHY


BOOT, NOW = 1795981267, 1795995667  # 2026-11-29 19:41:07 and 23:41:07 UTC


def test_xids_before_the_last_boot_or_before_since_do_not_count() -> None:
    old = xid(2, 79, "GPU has fallen off the bus.", "2026-11-29T18:00:00,000000+00:00")
    new = xid(3, 95, "Uncontained: FBHUB. RST: Yes, D-RST: No", "2026-11-29T21:00:00,000000+00:00")
    log = envelope(text("v42_r2_pass.json"), 0, [old, new], bootTime=BOOT, checkTime=NOW)
    v = diagnose(None, log)
    assert [(g.index, g.action) for g in v.gpus] == [(3, "RESET_GPU")]
    assert any("before the host's last boot" in r for r in v.reasons)
    after_reset = diagnose(None, log, since=datetime(2026, 11, 29, 22, 0, tzinfo=UTC))
    assert (after_reset.status, after_reset.action) == (VerdictStatus.HEALTHY, RepairAction.NONE)
    assert any("stale" in r for r in after_reset.reasons)


def test_dmesg_seconds_since_boot_are_placed_in_time_with_the_boot_time() -> None:
    line = xid(2, 95, "Uncontained: FBHUB. RST: Yes, D-RST: No", "[ 5123.441201]")
    log = envelope(text("v42_r2_pass.json"), 0, [line], bootTime=BOOT, checkTime=NOW)
    assert diagnose(None, log).action == RepairAction.RESET_GPU
    since = datetime.fromtimestamp(BOOT + 6000, UTC)
    assert diagnose(None, log, since=since).action == RepairAction.NONE


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("2026-11-29T21:05:09,123456+00:00", datetime(2026, 11, 29, 21, 5, 9, 123456, tzinfo=UTC)),
        ("2026-11-29T21:05:09+0100", datetime(2026, 11, 29, 20, 5, 9, tzinfo=UTC)),
        ("[Sun Nov 29 21:05:09 2026]", datetime(2026, 11, 29, 21, 5, 9, tzinfo=UTC)),
        ("Nov 29 21:05:09 ip-10-0-1-17 kernel:", datetime(2026, 11, 29, 21, 5, 9, tzinfo=UTC)),
        ("Dec 31 23:59:59 ip-10-0-1-17 kernel:", datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("[   60.000000]", datetime(2026, 11, 29, 19, 42, 7, tzinfo=UTC)),
        ("", None),
    ],
)
def test_line_time(prefix: str, expected: datetime | None) -> None:
    line = f"{prefix} NVRM: Xid (PCI:0000:10:1c): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus."
    assert line_time(line, datetime.fromtimestamp(BOOT, UTC), datetime.fromtimestamp(NOW, UTC)) == expected


def test_a_pasted_host_log_counts_only_the_last_boot() -> None:
    v = diagnose(None, text("host_log_xid79_then_reboot.log"))
    assert (v.status, v.gpus) == (VerdictStatus.INCONCLUSIVE, [])


def test_repeated_xid_lines_are_counted_once_and_capped() -> None:
    lines = [xid(1, 13, f"Graphics SM Warp Exception on (GPC {n % 15}, TPC 1, SM 0)") for n in range(200)]
    v = diagnose(None, envelope(text("v42_r2_pass.json"), 0, lines))
    [gpu] = v.gpus
    assert len(gpu.xids) == MAX_XIDS_PER_GPU
    assert sum(x["count"] for x in gpu.xids) <= 200
    assert gpu.xids[0]["count"] == 14  # 200 lines, 15 distinct messages
    assert any("5 more distinct XID messages" in why for why in gpu.why)
    assert len(json.dumps(v.dump())) < 20_000


def test_xid_lines_without_a_gpu_map_are_kept_apart_by_pci_address() -> None:
    log = "\n".join(
        [
            "NVRM: Xid (PCI:0000:10:1c): 45, pid=4242, name=python, Ch 00000010",
            "NVRM: Xid (PCI:0000:20:1c): 45, pid=4242, name=python, Ch 00000010",
            "NVRM: Xid (PCI:0000:20:1c): 13, pid=4242, name=python, Graphics SM Warp Exception",
        ]
    )
    v = diagnose(None, log)
    assert [(g.entity, g.action) for g in v.gpus] == [
        ("GPU at PCI:0000:10:1c", "REBOOT"),  # XID 45 alone: RESTART_FM
        ("GPU at PCI:0000:20:1c", "RESTART_APP"),  # XID 45 follows XID 13
    ]


def test_a_printed_fail_without_an_error_does_not_make_an_exit_code() -> None:
    # dcgmi 3.x prints a test that did not run as "Fail"; its exit code counts errors, so it would exit 0.
    v = diagnose(None, text("v33_r1_not_run_prints_fail_exit0.json"))
    assert (v.exit_code, v.status, v.action) == (0, VerdictStatus.HEALTHY, RepairAction.NONE)


def test_pasted_xid_lines_find_their_gpu_by_pci_domain_too() -> None:
    gb200 = [{"index": i, "uuid": f"GPU-{i}", "pciBusId": f"0000000{8 + i:X}:01:00.0"} for i in range(4)]
    log = "NVRM: Xid (PCI:0009:01:00): 95, pid='<unknown>', name=<unknown>, Uncontained: FBHUB. RST: Yes, D-RST: No"
    body = {"version": 2, "dcgmiExitCode": 0, "dcgmiOutput": text("v42_r2_pass.json"), "gpus": gb200}
    v = diagnose(None, f"{log}\nGPU_RECOVERY_RESULT {json.dumps(body)}\n")
    assert [(g.index, g.action) for g in v.gpus] == [(1, "RESET_GPU")]


def test_error_ids_printed_as_strings_are_still_ids() -> None:
    doc = text("v42_r2_row_remap_failure_gpu3.json").replace('"error_id" : 80', '"error_id" : "80"')
    assert '"80"' in doc
    assert diagnose(205, doc).action == RepairAction.REPLACE
