"""What the DCGM check container prints: realistic `dcgmi diag -j` JSON and NVIDIA XID kernel-log lines.

Codes come from DCGM's public headers (dcgm_errors.h, dcgm_structs.h): a failed test makes dcgmi exit with
DCGM_ST_NVVS_ERROR (-30, shell status 226); a failure whose error has ISOLATE severity exits with
DCGM_ST_NVVS_ISOLATE_ERROR (-51, shell status 205). The check container's exit code is dcgmi's.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

RESULT_MARKER = "GPU_RECOVERY_RESULT"
ENVELOPE_VERSION = 1
DCGM_VERSION = "4.2.3"
DRIVER_VERSION = "570.133.20"

EXIT_PASS = 0
EXIT_NVVS_ERROR = 226  # DCGM_ST_NVVS_ERROR: a diagnostic test failed
EXIT_ISOLATE = 205  # DCGM_ST_NVVS_ISOLATE_ERROR: a failure that means the GPU must be isolated/replaced

# dcgmErrorSeverity_t
SEVERITY_ISOLATE = 2
SEVERITY_RESET = 6
# dcgmErrorCategory_t
CATEGORY_SOFTWARE_XID = 5
CATEGORY_HARDWARE_MEMORY = 10
CATEGORY_HARDWARE_NVLINK = 11
CATEGORY_HARDWARE_PCIE = 13

# (category, test) in the order dcgmi runs them, and the lowest run level that includes each test.
_TESTS: list[tuple[str, str, int]] = [
    ("Deployment", "software", 1),
    ("Integration", "pcie", 2),
    ("Hardware", "memory", 2),
    ("Hardware", "diagnostic", 3),
    ("Stress", "targeted_stress", 3),
    ("Stress", "targeted_power", 3),
    ("Stress", "memory_bandwidth", 3),
    ("Hardware", "memtest", 4),
    ("Stress", "pulse_test", 4),
]

# PCI bus ids of the eight A100s of a p4d.24xlarge; other shapes get synthesised ids.
_P4D_BUS_IDS = ["10:1C", "10:1D", "20:1C", "20:1D", "90:1C", "90:1D", "A0:1C", "A0:1D"]


@dataclass(frozen=True)
class FaultProfile:
    """How one fault kind shows up: the XID in the kernel log and the dcgmi finding."""

    xid: int | None
    xid_text: str  # the driver's text after "<xid>, pid=..., name=..., "
    test: str  # the dcgmi test that reports it (falls back to "software" when the level does not run it)
    error_id: int  # dcgmError_t
    error_category: int
    error_severity: int
    message: str  # DCGM message format; {gpu} is the GPU index
    exit_code: int


_FELL_OFF_BUS = FaultProfile(
    79, "GPU has fallen off the bus.", "software", 101, CATEGORY_SOFTWARE_XID, SEVERITY_RESET,
    "Detected XID 79 for GPU {gpu}", EXIT_NVVS_ERROR,
)  # fmt: skip

FAULT_PROFILES: dict[str, FaultProfile] = {
    "xid79": _FELL_OFF_BUS,
    # A volatile DBE is an ISOLATE-severity error in DCGM (DCGM_FR_VOLATILE_DBE_DETECTED), hence 205.
    "xid48": FaultProfile(
        48,
        "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 2, "
        "subpartition 0.",
        "memory",
        4,
        CATEGORY_HARDWARE_MEMORY,
        SEVERITY_ISOLATE,
        "Detected 1 volatile double-bit ECC error(s) in GPU {gpu}.",
        EXIT_ISOLATE,
    ),
    "xid63": FaultProfile(
        63,
        "Row Remapper: New row (0x00000000012f3a80) marked for remapping, reset gpu to activate.",
        "memory",
        85,
        CATEGORY_HARDWARE_MEMORY,
        SEVERITY_RESET,
        "GPU {gpu} had uncorrectable memory errors and row remapping is pending. Run a field diagnostic on the GPU.",
        EXIT_NVVS_ERROR,
    ),
    "xid64": FaultProfile(
        64,
        "Row Remapper Error: row remapping failed, out of spare rows for bank 0x3.",
        "memory",
        80,
        CATEGORY_HARDWARE_MEMORY,
        SEVERITY_ISOLATE,
        "GPU {gpu} had uncorrectable memory errors and row remapping failed.",
        EXIT_ISOLATE,
    ),
    "xid74": FaultProfile(
        74,
        "NVLink: fatal error detected on link 3(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)",
        "pcie",
        14,
        CATEGORY_HARDWARE_NVLINK,
        SEVERITY_RESET,
        "GPU {gpu}'s NvLink link 3 is currently down",
        EXIT_NVVS_ERROR,
    ),
    "xid94": FaultProfile(
        94,
        "Contained: SM (0x1). RST: Yes, D-RST: No",
        "memory",
        85,
        CATEGORY_HARDWARE_MEMORY,
        SEVERITY_RESET,
        "GPU {gpu} had uncorrectable memory errors and row remapping is pending. Run a field diagnostic on the GPU.",
        EXIT_NVVS_ERROR,
    ),
    "xid95": FaultProfile(
        95,
        "Uncontained: FBHUB. RST: Yes, D-RST: No",
        "memory",
        81,
        CATEGORY_HARDWARE_MEMORY,
        SEVERITY_RESET,
        "GPU {gpu} reported an uncontained ECC error (XID 95). Drain the GPU and reset it.",
        EXIT_NVVS_ERROR,
    ),
    "xid119": FaultProfile(
        119,
        "Timeout after 6s of waiting for RPC response from GPU{gpu} GSP! Expected function 76 (GSP_RM_CONTROL) "
        "(0x20800a4c 0x4).",
        "software",
        101,
        CATEGORY_SOFTWARE_XID,
        SEVERITY_RESET,
        "Detected XID 119 for GPU {gpu}",
        EXIT_NVVS_ERROR,
    ),
    "isolate": FaultProfile(
        64,
        "Row Remapper Error: row remapping failed, out of spare rows for bank 0x7.",
        "memory",
        84,
        CATEGORY_HARDWARE_MEMORY,
        SEVERITY_ISOLATE,
        "GPU {gpu} had uncorrectable row remap failures. Replace the GPU.",
        EXIT_ISOLATE,
    ),
    # The node is bad in the XID 79 way before the reboot it never comes back from.
    "never_returns": _FELL_OFF_BUS,
}

# An application fault: the driver logs XID 13 but the GPU stays healthy, so DCGM passes.
APP_CRASH_XID = (13, "Graphics SM Warp Exception on (GPC 0, TPC 1, SM 0): Out Of Range Address")


def gpu_inventory(instance_id: str, gpus: int) -> list[dict[str, Any]]:
    """Stable index/UUID/PCI bus id of each GPU of an instance (the UUID is what ECS reports as a gpuId)."""
    inventory = []
    for index in range(gpus):
        bus = _P4D_BUS_IDS[index] if gpus <= len(_P4D_BUS_IDS) else f"{0x10 + index:02X}:00"
        inventory.append(
            {
                "index": index,
                "uuid": f"GPU-{uuid.uuid5(uuid.NAMESPACE_URL, f'{instance_id}/gpu/{index}')}",
                "pciBusId": f"00000000:{bus}.0",
            }
        )
    return inventory


def xid_line(xid: int, pci_bus_id: str, text: str, pid: int | None = None, process: str | None = None) -> str:
    """A kernel log line as the NVIDIA driver prints it (``NVRM: Xid (PCI:0000:10:1c): 79, pid=..., ...``)."""
    domain, bus, device = pci_bus_id.split(":")
    pci = f"PCI:{domain[-4:]}:{bus.lower()}:{device.split('.')[0].lower()}"
    who = f"pid={pid}, name={process}" if pid is not None else "pid='<unknown>', name=<unknown>"
    return f"NVRM: Xid ({pci}): {xid}, {who}, {text}"


def _xid_entry(xid: int, text: str, gpu: dict[str, Any], app: bool) -> dict[str, Any]:
    pid, process = (4242, "python") if app else (None, None)
    line = xid_line(xid, gpu["pciBusId"], text.format(gpu=gpu["index"]), pid, process)
    return {"xid": xid, "gpuIndex": gpu["index"], "pciBusId": gpu["pciBusId"], "line": line}


def diag_json(inventory: list[dict[str, Any]], level: int, profile: FaultProfile | None, bad_gpus: list[int]) -> dict:
    """The document ``dcgmi diag -r <level> -j`` prints (DCGM 4.x layout)."""
    tests = [(cat, name) for cat, name, min_level in _TESTS if min_level <= level]
    failing = None
    if profile is not None:
        failing = profile.test if any(name == profile.test for _, name in tests) else "software"
    categories: list[dict[str, Any]] = []
    aborted = False  # dcgmi stops after the first failed test; later ones report Skip
    for category, name in tests:
        results = []
        for gpu in inventory:
            entry: dict[str, Any] = {
                "entity_group": "GPU",
                "entity_group_id": 1,
                "entity_id": gpu["index"],
                "status": "Skip" if aborted else "Pass",
            }
            if name == failing and profile is not None and gpu["index"] in bad_gpus:
                entry["status"] = "Fail"
                entry["warnings"] = [
                    {
                        "error_category": profile.error_category,
                        "error_id": profile.error_id,
                        "error_severity": profile.error_severity,
                        "warning": profile.message.format(gpu=gpu["index"]),
                    }
                ]
            results.append(entry)
        failed = any(r["status"] == "Fail" for r in results)
        summary = "Skip" if aborted else ("Fail" if failed else "Pass")
        test = {"name": name, "results": results, "test_summary": {"status": summary}}
        existing = next((c for c in categories if c["category"] == category), None)
        if existing is None:
            categories.append({"category": category, "tests": [test]})
        else:
            existing["tests"].append(test)
        aborted = aborted or failed
    return {
        "DCGM Diagnostic": {"test_categories": categories},
        "entity_groups": [
            {
                "entity_group": "GPU",
                "entity_group_id": 1,
                "entities": [{"entity_id": g["index"], "device_id": "20b0", "serial_num": ""} for g in inventory],
            }
        ],
        "metadata": {"DCGM Version": DCGM_VERSION, "Driver Version Detected": DRIVER_VERSION},
        "version": DCGM_VERSION,
    }


@dataclass(frozen=True)
class CheckOutput:
    exit_code: int
    lines: list[str]  # what the container printed after start_lines(), in order; the last is the result line
    envelope: dict[str, Any]


def run_check(inventory: list[dict[str, Any]], level: int, fault_kind: str | None, bad_gpus: list[int]) -> CheckOutput:
    """The outcome of one DCGM check on a node whose active fault is ``fault_kind`` (None: healthy)."""
    profile = FAULT_PROFILES.get(fault_kind) if fault_kind else None
    by_index = {g["index"]: g for g in inventory}
    xids: list[dict[str, Any]] = []
    if profile is not None and profile.xid is not None:
        xids = [_xid_entry(profile.xid, profile.xid_text, by_index[i], app=False) for i in bad_gpus]
    elif fault_kind == "app_crash":
        xids = [_xid_entry(APP_CRASH_XID[0], APP_CRASH_XID[1], by_index[i], app=True) for i in bad_gpus]
    exit_code = profile.exit_code if profile else EXIT_PASS
    envelope = {
        "version": ENVELOPE_VERSION,
        "dcgmiExitCode": exit_code,
        "diagLevel": level,
        "dcgmi": diag_json(inventory, level, profile, bad_gpus),
        "xids": xids,
        "gpus": inventory,
    }
    lines = [x["line"] for x in xids]
    lines.append("Successfully ran diagnostic for group." if exit_code == 0 else "Error: diagnostic test failed.")
    lines.append(f"{RESULT_MARKER} {json.dumps(envelope, separators=(',', ':'))}")
    return CheckOutput(exit_code, lines, envelope)


def start_lines(gpus: int, level: int) -> list[str]:
    """What the check prints before dcgmi returns (all a hung check ever prints)."""
    return [
        f"dcgm-check: DCGM {DCGM_VERSION}, driver {DRIVER_VERSION}, {gpus} GPU(s) visible",
        "dcgm-check: starting nv-hostengine (embedded)",
        f"dcgm-check: running dcgmi diag -r {level} -j",
    ]


def parse_envelope(messages: list[str]) -> dict[str, Any] | None:
    """The result envelope from a check's log lines (None when the check never printed one)."""
    for message in reversed(messages):
        if message.startswith(RESULT_MARKER + " "):
            return json.loads(message[len(RESULT_MARKER) + 1 :])
    return None
