"""diagnosis.diagnose on realistic dcgmi output of DCGM 4.x and 3.x, wrapper envelopes and kernel XID lines
(tests/unit/fixtures/dcgm/): the action, the GPUs named and the reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recovery.diagnosis import diagnose, gpu_summary, reset_targets
from recovery.models import RepairAction, VerdictStatus
from recovery.xid_catalog import XID_CATALOG

FIXTURES = Path(__file__).parent / "fixtures" / "dcgm"
GPUS = json.loads((FIXTURES / "gpus.json").read_text())


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


@pytest.mark.parametrize("version", ["v4", "v3"])
def test_pass_is_healthy(version: str) -> None:
    v = diagnose(0, text(f"{version}_pass.json"))
    assert (v.status, v.action, v.gpus) == (VerdictStatus.HEALTHY, RepairAction.NONE, [])
    assert v.dcgm_version in ("4.2.3", "3.3.9")


@pytest.mark.parametrize("version", ["v4", "v3"])
def test_single_gpu_memory_failure_resets_that_gpu(version: str) -> None:
    v = diagnose(226, text(f"{version}_memory_fail_gpu3.json"))
    assert (v.status, v.action) == (VerdictStatus.UNHEALTHY, RepairAction.RESET_GPU)
    [gpu] = v.gpus
    assert gpu.index == 3
    assert gpu.action == "RESET_GPU"
    assert gpu.dcgm[0]["severity"] == 6
    assert "row remapping is pending" in gpu.dcgm[0]["message"]
    assert reset_targets(v) == [3]
    assert any("GPU 3" in r for r in v.reasons)


@pytest.mark.parametrize("version", ["v4", "v3"])
def test_pcie_warning_is_reported_but_healthy(version: str) -> None:
    v = diagnose(0, text(f"{version}_pcie_warning_gpu1.json"))
    assert (v.status, v.action) == (VerdictStatus.HEALTHY, RepairAction.NONE)
    [gpu] = v.gpus
    assert (gpu.index, gpu.action, gpu.failed_tests) == (1, "IGNORE", [])
    assert "PCIe replays" in gpu.dcgm[0]["message"]


@pytest.mark.parametrize("version", ["v4", "v3"])
@pytest.mark.parametrize("exit_code", [0, 226])
def test_runtime_error_is_inconclusive(version: str, exit_code: int) -> None:
    v = diagnose(exit_code, text(f"{version}_runtime_error.json"))
    assert v.status == VerdictStatus.INCONCLUSIVE
    assert "could not run the diagnostic" in v.reasons[0]


@pytest.mark.parametrize("version", ["v4", "v3"])
@pytest.mark.parametrize("exit_code", [0, 226])
def test_truncated_output_is_inconclusive(version: str, exit_code: int) -> None:
    v = diagnose(exit_code, text(f"{version}_truncated.log"))
    assert v.status == VerdictStatus.INCONCLUSIVE
    assert "truncated" in v.reasons[0]


@pytest.mark.parametrize("version", ["v4", "v3"])
@pytest.mark.parametrize("exit_code", [137, 143, 203])
def test_killed_is_inconclusive(version: str, exit_code: int) -> None:
    v = diagnose(exit_code, text(f"{version}_killed.log"))
    assert v.status == VerdictStatus.INCONCLUSIVE
    assert "killed" in v.reasons[0]


@pytest.mark.parametrize("version", ["v4", "v3"])
def test_skip_only_is_inconclusive(version: str) -> None:
    v = diagnose(0, text(f"{version}_skip_only.json"))
    assert v.status == VerdictStatus.INCONCLUSIVE
    assert "Skip" in v.reasons[0]


def test_unknown_dcgm_version_is_inconclusive() -> None:
    v = diagnose(0, text("unknown_version.json"))
    assert v.status == VerdictStatus.INCONCLUSIVE
    assert "unknown DCGM version '5.0.1'" in v.reasons[0]


def test_unknown_envelope_version_is_inconclusive() -> None:
    line = "GPU_RECOVERY_RESULT " + json.dumps({"version": 9, "dcgmi": json.loads(text("v4_pass.json"))})
    v = diagnose(0, line)
    assert v.status == VerdictStatus.INCONCLUSIVE
    assert "envelope version 9" in v.reasons[0]


def test_envelope_with_xid95_names_gpu_2_and_why() -> None:
    v = diagnose(None, text("v4_envelope_xid95.log"))  # the exit code comes from the envelope
    assert (v.exit_code, v.status, v.action) == (226, VerdictStatus.UNHEALTHY, RepairAction.RESET_GPU)
    [gpu] = v.gpus
    assert (gpu.index, gpu.uuid, gpu.failed_tests) == (2, GPUS[2]["uuid"], ["memory"])
    assert [x["xid"] for x in gpu.xids] == [95]
    assert any("NVIDIA catalog immediate action RESET_GPU" in why for why in gpu.why)
    assert gpu_summary(v) == "GPU 2: memory failed, XID 95 -> RESET_GPU"


def test_isolate_exit_205_replaces() -> None:
    v = diagnose(205, text("v4_envelope_xid48_isolate.log"))
    assert (v.status, v.action) == (VerdictStatus.UNHEALTHY, RepairAction.REPLACE)
    assert [g.index for g in v.gpus] == [5]
    assert "ISOLATE" in v.reasons[0]


def test_isolate_severity_without_205_reboots_first() -> None:
    v = diagnose(226, text("v4_envelope_xid48_isolate.log"))
    assert v.action == RepairAction.REBOOT
    assert any("without dcgmi exit 205" in why for why in v.gpus[0].why)


def test_fault_on_a_gpu_the_task_did_not_use_still_counts_and_says_so() -> None:
    v = diagnose(226, text("v4_envelope_xid95.log"), task_gpu_ids=[GPUS[0]["uuid"], GPUS[1]["uuid"]])
    assert v.action == RepairAction.RESET_GPU
    assert v.gpus[0].used_by_failed_task is False
    assert any("GPU 2 was not used by the failed task; its fault still counts" in r for r in v.reasons)
    used = diagnose(226, text("v4_envelope_xid95.log"), task_gpu_ids=[GPUS[2]["uuid"]])
    assert used.gpus[0].used_by_failed_task is True
    assert not any("not used" in r for r in used.reasons)


@pytest.mark.parametrize("xid", sorted(XID_CATALOG))
def test_every_catalog_xid_line_maps_to_its_action(xid: int) -> None:
    [line] = [raw for raw in text("xids.log").splitlines() if f"): {xid}, " in raw]
    envelope = {"version": 1, "dcgmiExitCode": 0, "dcgmi": json.loads(text("v4_pass.json")), "xids": [], "gpus": GPUS}
    log = f"{line}\nGPU_RECOVERY_RESULT {json.dumps(envelope)}\n"
    v = diagnose(0, log)
    [gpu] = v.gpus
    assert gpu.index == 1  # PCI 10:1d is GPU 1 in the map
    assert gpu.xids[0]["xid"] == xid
    assert gpu.action == XID_CATALOG[xid].action
    expected = {"IGNORE": "NONE"}.get(gpu.action, gpu.action)
    assert v.action.value == expected
    healthy = gpu.action in ("IGNORE", "RESTART_APP")
    assert v.status == (VerdictStatus.HEALTHY if healthy else VerdictStatus.UNHEALTHY)


def test_app_xid13_never_costs_a_reboot() -> None:
    v = diagnose(0, text("xids.log").splitlines()[0] + "\n" + text("v4_pass.json"))
    assert (v.status, v.action) == (VerdictStatus.HEALTHY, RepairAction.RESTART_APP)


def test_xid79_twice_on_one_gpu_is_replace() -> None:
    line = next(raw for raw in text("xids.log").splitlines() if "): 79, " in raw)
    envelope = {"version": 1, "dcgmiExitCode": 0, "dcgmi": json.loads(text("v4_pass.json")), "xids": [], "gpus": GPUS}
    v = diagnose(0, f"{line}\n{line}\nGPU_RECOVERY_RESULT {json.dumps(envelope)}\n")
    assert v.action == RepairAction.REPLACE


def test_raw_json_without_exit_code_is_judged_on_the_json() -> None:
    v = diagnose(None, text("v4_memory_fail_gpu3.json"))
    assert (v.exit_code, v.action) == (226, RepairAction.RESET_GPU)
    assert "no exit code given" in v.reasons[0]
    assert diagnose(None, text("v4_pass.json")).status == VerdictStatus.HEALTHY
    assert diagnose(None, "just some log line").status == VerdictStatus.INCONCLUSIVE


def test_unknown_nonzero_exit_without_failures_is_inconclusive() -> None:
    v = diagnose(1, text("v4_pass.json"))
    assert v.status == VerdictStatus.INCONCLUSIVE
    assert diagnose(226, text("v4_pass.json")).status == VerdictStatus.INCONCLUSIVE
