"""The XID catalog, the XID 144-150 decode and the DCGM error tables are NVIDIA's data: each row is checked against
NVIDIA's own files in ../shared/reference/nvidia/ (beside the clone, as in CI), and the mapping onto our actions
is asserted as a whole."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from recovery.xid_catalog import (
    BUCKET_ACTIONS,
    DCGM_TABLE_VERSIONS,
    DEFAULT_XID_ACTION,
    GpuAction,
    Severity,
    XidEvent,
    dcgm_error_action,
    dcgm_errors,
    dcgm_severity,
    most_severe,
    nvlink5_decode,
    table_version,
    xid_action,
    xid_catalog,
)

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "nvidia"
GENERATIONS = ("a100", "h100", "b100", "gb200")
A = GpuAction


def reference(name: str) -> list[dict[str, str]]:
    path = REFERENCE / name
    assert path.is_file(), f"NVIDIA's reference data is missing: {path}"
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_every_xid_of_nvidias_catalog_is_in_the_table_with_its_immediate_action() -> None:
    rows = reference("xid-catalog.csv")
    assert sorted(xid_catalog()) == sorted(int(r["code"]) for r in rows)
    for row in rows:
        entry = xid_catalog()[int(row["code"])]
        assert entry.mnemonic == row["mnemonic"], row["code"]
        assert entry.catalog_action == row["immediate_action"], row["code"]
        assert entry.used_on == tuple(g for g in GENERATIONS if row[g] == "YES"), row["code"]
        assert entry.xid154_linked == bool(row["xid154_linkage"]), row["code"]


def test_every_row_of_the_144_150_decode_is_in_the_table() -> None:
    with (REFERENCE / "xid-144-150-decode.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    assert len(nvlink5_decode()) == len(rows)
    for row, decoded in zip(rows, nvlink5_decode(), strict=True):
        assert (decoded.xid, decoded.unit, *decoded.patterns) == (int(row[0]), row[1], row[2], row[3])
        assert decoded.action == row[5]
        assert (*decoded.action2_patterns, decoded.action2) == (row[6], row[7], row[8])
        assert [f"{s:#010x}" for s in decoded.error_status] == [s.lower() for s in row[4].split("/") if s]


def test_every_dcgm_error_matches_dcgm_46_and_nvsentinel() -> None:
    errors = reference("dcgm-4.6.0-errors.csv")
    with (REFERENCE / "nvsentinel-dcgm-error-actions.csv").open(newline="", encoding="utf-8") as f:
        actions = dict(csv.reader(f))
    assert sorted(dcgm_errors()) == sorted(int(r["id"]) for r in errors)
    for row in errors:
        error = dcgm_errors()[int(row["id"])]
        assert (error.name, error.category, error.severities["4.6"]) == (row["name"], row["category"], row["severity"])
        assert error.nvsentinel_action == actions.get(row["name"], ""), row["name"]


def test_every_bucket_used_as_an_immediate_action_has_a_rule() -> None:
    special = {"WORKFLOW_XID_45", "WORKFLOW_NVLINK5_ERR", "XID_154", ""}
    used = {e.catalog_action for e in xid_catalog().values() if e.used_on}
    assert used - special <= set(BUCKET_ACTIONS)


@pytest.mark.parametrize("xid", sorted(xid_catalog()))
def test_xid_action_follows_the_catalog_and_names_its_bucket(xid: int) -> None:
    entry = xid_catalog()[xid]
    action, why = xid_action(XidEvent(xid))
    assert f"XID {xid}" in why
    assert f"catalog immediate action {entry.catalog_action or 'none'}" in why
    if not entry.used_on or not entry.catalog_action:
        assert action == DEFAULT_XID_ACTION
    elif entry.catalog_action in BUCKET_ACTIONS:
        assert action == BUCKET_ACTIONS[entry.catalog_action]


@pytest.mark.parametrize(
    ("xid", "action"),
    # The rows the old hand-written table got wrong, and the common ones.
    [(13, A.RESTART_APP), (31, A.RESTART_APP), (43, A.IGNORE), (48, A.RESET_GPU), (61, DEFAULT_XID_ACTION),
     (62, A.RESET_GPU), (63, A.IGNORE), (64, A.RESET_GPU), (69, A.RESTART_APP), (74, A.RESET_GPU), (79, A.REBOOT),
     (92, A.IGNORE), (94, A.RESTART_APP), (95, A.RESET_GPU), (109, A.RESET_GPU), (119, A.RESET_GPU),
     (151, A.REBOOT), (54, A.REPLACE)],
)  # fmt: skip
def test_known_rows(xid: int, action: GpuAction) -> None:
    assert xid_action(XidEvent(xid))[0] == action


def test_unlisted_and_unused_xids_are_not_a_reboot_by_reflex() -> None:
    assert DEFAULT_XID_ACTION == A.RESTART_APP
    assert xid_action(XidEvent(999)) == (A.RESTART_APP, "XID 999 is not in NVIDIA's catalog: RESTART_APP by default")
    assert "unused on A100/H100/B100/GB200" in xid_action(XidEvent(1))[1]
    assert xid_action(XidEvent(171))[0] == A.RESTART_APP  # listed without an immediate action


def test_xid_45_alone_restarts_the_fabric_manager_and_with_others_follows_them() -> None:
    alone = XidEvent(45, "NVRM: Xid (PCI:0000:10:1c): 45, pid=4242, name=python, Ch 00000010")
    assert xid_action(alone, [alone])[0] == A.REBOOT
    assert "RESTART_FM" in xid_action(alone, [alone])[1]
    assert xid_action(alone, [alone, XidEvent(13)])[0] == A.IGNORE


@pytest.mark.parametrize(
    ("value", "action"), [(0, A.IGNORE), (1, A.RESET_GPU), (2, A.REBOOT), (3, A.RESET_GPU), (4, A.RESET_GPU)]
)
def test_xid_154_says_the_action(value: int, action: GpuAction) -> None:
    text = f"NVRM: Xid (PCI:0000:97:00): 154, GPU recovery action changed from 0x0 (None) to {value:#x} (x)"
    assert xid_action(XidEvent(154, text))[0] == action
    assert xid_action(XidEvent(154, "NVRM: Xid (PCI:0000:97:00): 154, garbled"))[0] == A.REBOOT


NVLINK = "NVRM: Xid (PCI:0019:01:00): {xid}, {unit} {fatal} XC1 i0 Link 12 ({intr:#010x} {status:#010x} 0x0 0x0)"


@pytest.mark.parametrize(
    ("xid", "unit", "intr", "status", "driver", "action"),
    [
        (145, "RLW_REMAP", 0x82, 0x40, "570.133.20", A.RESET_GPU),  # V1 RLW_REMAP 0x40: RESET_GPU
        (145, "RLW_REMAP", 0x82, 0x100, "570.133.20", A.IGNORE),  # V1 RLW_REMAP 0x100: IGNORE
        (145, "RLW_REMAP", 0x04, 0x40, "575.51.03", A.RESET_GPU),  # V2 layout from R575
        (145, "RLW_REMAP", 0x82, 0x40, "575.51.03", A.RESET_GPU),  # V1 bits on R575: no row, Fatal
        (145, "RLW_SRC_TRACK", 0x040988E2, 0x08, "570.86.15", A.RESTART_APP),  # XID_154_EVAL without XID 154
        (144, "SAW_MVB", 0x21, 0x03, "570.86.15", A.RESET_GPU),  # two status bits: IGNORE and RESET_GPU
        (149, "NETIR_LINK_EVT", 0x1001C6, 0x0, "570.86.15", A.RESET_GPU),  # link-down reason 000001
        (150, "MSE_WATCHDOG", 0x0, 0x0, None, A.RESET_GPU),
    ],
)
def test_xid_144_150_decode(xid: int, unit: str, intr: int, status: int, driver: str | None, action: A) -> None:  # noqa: PLR0917
    fatal = "Fatal" if action == A.RESET_GPU else "Nonfatal"
    event = XidEvent(xid, NVLINK.format(xid=xid, unit=unit, fatal=fatal, intr=intr, status=status))
    got, why = xid_action(event, [event], driver)
    assert got == action, why


def test_xid_154_eval_takes_xid_154s_action() -> None:
    remap = XidEvent(145, NVLINK.format(xid=145, unit="RLW_SRC_TRACK", fatal="Nonfatal", intr=0x040988E2, status=8))
    reboot = XidEvent(154, "NVRM: Xid (PCI:0019:01:00): 154, GPU recovery action changed from 0x0 (None) to 0x2 (x)")
    assert xid_action(remap, [remap, reboot], "570.86.15")[0] == A.REBOOT


def test_dcgm_severity_per_version() -> None:
    assert DCGM_TABLE_VERSIONS == ("3.3", "4.2", "4.4", "4.5", "4.6")
    # Row-remap failure (80) is ISOLATE up to 4.5 and RESET in 4.6.
    assert [dcgm_severity(80, v, None) for v in ("3.3.9", "4.2.3", "4.4.2", "4.5.3", "4.6.0")] == [
        Severity.ISOLATE, Severity.ISOLATE, Severity.ISOLATE, Severity.ISOLATE, Severity.RESET
    ]  # fmt: skip
    assert table_version("4.3.1") == "4.2"
    assert table_version("4.7.0") == "4.6"
    assert table_version("3.1.8") == "3.3"
    assert table_version("4.x") is None
    assert dcgm_severity(80, None, 2) == Severity.ISOLATE  # no version: as dcgmi printed it
    assert dcgm_severity(80, None, None) == Severity.RESET  # nothing: the newest table
    assert dcgm_severity(120, "4.2.3", 2) == Severity.ISOLATE  # not yet in 4.2's table: as printed


@pytest.mark.parametrize(
    ("error_id", "version", "action"),
    [
        (80, "4.2.3", A.REPLACE),  # ISOLATE, NVSentinel CONTACT_SUPPORT
        (80, "4.6.0", A.RESET_GPU),  # RESET
        (4, "4.6.0", A.RESET_GPU),  # ISOLATE, NVSentinel COMPONENT_RESET
        (81, "4.6.0", A.REBOOT),  # ISOLATE, NVSentinel RESTART_VM
        (120, "4.6.0", A.REBOOT),  # ISOLATE, NVSentinel RESTART_BM
        (126, "4.6.0", A.REBOOT),  # DCGM_FR_GPU_RECOVERY_REBOOT
        (14, "4.2.3", A.REBOOT),  # NVLink down: TRIAGE, NVSentinel RESTART_VM
        (51, "4.2.3", A.IGNORE),  # CUDA API: MONITOR
        (117, "4.2.3", A.IGNORE),  # test skipped: CONFIG, NVSentinel NONE
        (29, "4.2.3", A.REBOOT),  # persistence mode: CONFIG
        (30, "3.3.9", A.REBOOT),  # low PCIe bandwidth: TRIAGE
        (None, "4.2.3", A.REBOOT),  # a bare failure
    ],
)
def test_dcgm_error_action(error_id: int | None, version: str, action: GpuAction) -> None:
    got, why = dcgm_error_action(error_id, version)
    assert got == action, why


def test_dcgm_xid_error_follows_the_xid_catalog() -> None:
    assert dcgm_error_action(101, "4.2.3", 4, "Detected XID 79 for GPU 1")[0] == A.REBOOT
    assert dcgm_error_action(101, "4.2.3", 4, "Detected XID 13 for GPU 1")[0] == A.RESTART_APP


def test_a_reset_is_for_gpus_only() -> None:
    assert dcgm_error_action(85, "4.6.0", gpu_entity=False)[0] == A.REBOOT


def test_most_severe() -> None:
    assert most_severe([A.RESTART_APP, A.REBOOT, A.RESET_GPU]) == A.REBOOT
    assert most_severe([]) == A.IGNORE


@pytest.mark.parametrize(
    ("registers", "action"),
    [
        ("0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0", A.RESET_GPU),  # third register bit 16: run diags
        ("0x800001, 0x0, 0x0, 0x0, 0x100000, 0x0, 0x0", A.IGNORE),  # ignorable bits, an ECC threshold only
        ("0x40000001, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0", A.IGNORE),
        ("0x11, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0", A.RESET_GPU),  # bit 4: ECC/parity
        ("0x0, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0", A.RESET_GPU),  # nothing to go by
    ],
)
def test_xid_74_register_decode(registers: str, action: GpuAction) -> None:
    text = f"NVRM: Xid (PCI:0000:8a:00): 74, pid=1, name=x, NVLink: fatal error detected on link 3({registers})"
    assert xid_action(XidEvent(74, text))[0] == action
    assert xid_action(XidEvent(74, "NVRM: Xid (PCI:0000:8a:00): 74, NVLink error"))[0] == A.RESET_GPU


def test_older_releases_know_a_subset_of_the_errors_with_valid_severities() -> None:
    # Ids are stable across releases (dcgm_errors.h); newer releases add ids at the end and may re-rate old ones.
    for version in DCGM_TABLE_VERSIONS:
        known = sorted(i for i, e in dcgm_errors().items() if e.severities[version])
        assert known == list(range(len(known))), version
        assert all(Severity(dcgm_errors()[i].severities[version]) for i in known)
    sizes = [sum(bool(e.severities[v]) for e in dcgm_errors().values()) for v in DCGM_TABLE_VERSIONS]
    assert sizes == sorted(sizes)
    changed = {i for i, e in dcgm_errors().items() if len({s for s in e.severities.values() if s}) > 1}
    assert changed == {80}
