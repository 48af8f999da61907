"""What the DCGM check container prints: `dcgmi diag -j` in the shapes real dcgmi prints, NVIDIA XID kernel lines,
and the wrapper's result envelope (dcgm-check/entrypoint.sh).

Shapes follow NVIDIA/DCGM ``dcgmi/Diag.cpp`` and ``nvvs/include/NvvsJsonStrings.h``: DCGM 4.x prints
``"DCGM Diagnostic"`` with results per ``entity_group``/``entity_id``, the version at ``metadata.version``; DCGM 3.x
prints ``"DCGM GPU Diagnostic"`` with the deployment tests first, a string ``gpu_id`` per GPU result, and the version
at the top level. Exit codes are dcgmi's (dcgm_structs.h): a reported error makes it exit DCGM_ST_NVVS_ERROR (-30,
shell status 226), an error of ISOLATE severity DCGM_ST_NVVS_ISOLATE_ERROR (-51, 205). Error ids and severities are
those of DCGM's error table (functions/recovery/data/dcgm-errors.csv).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

RESULT_MARKER = "GPU_RECOVERY_RESULT"
ENVELOPE_VERSION = 2
DCGM_VERSION = "4.2.3"
DRIVER_VERSION = "570.133.20"

EXIT_PASS = 0
EXIT_NVVS_ERROR = 226  # DCGM_ST_NVVS_ERROR: a diagnostic reported an error
EXIT_ISOLATE = 205  # DCGM_ST_NVVS_ISOLATE_ERROR: one of the errors has ISOLATE severity

# dcgmErrorSeverity_t
SEVERITY_ISOLATE = 2
SEVERITY_TRIAGE = 4
SEVERITY_RESET = 6
# dcgmErrorCategory_t
CATEGORY_SOFTWARE_XID = 5
CATEGORY_HARDWARE_MEMORY = 10
CATEGORY_HARDWARE_NVLINK = 11

# (category, DCGM 4.x test name, DCGM 3.x display name, lowest run level that includes it), in dcgmi's order.
_TESTS: list[tuple[str, str, str, int]] = [
    ("Deployment", "software", "", 1),
    ("Integration", "pcie", "PCIe", 2),
    ("Hardware", "memory", "GPU Memory", 2),
    ("Hardware", "diagnostic", "Diagnostic", 3),
    ("Stress", "targeted_stress", "Targeted Stress", 3),
    ("Stress", "targeted_power", "Targeted Power", 3),
    ("Stress", "memory_bandwidth", "Memory Bandwidth", 3),
    ("Hardware", "memtest", "Memtest", 4),
    ("Hardware", "pulse_test", "Pulse Test", 4),
]
# DCGM 3.x's level-1 (deployment) tests, one result each for all GPUs (dcgmi/Diag.cpp levelOneTests).
_V3_DEPLOYMENT = [
    "Denylist", "NVML Library", "CUDA Main Library", "Permissions and OS Blocks", "Persistence Mode",
    "Environment Variables", "Page Retirement/Row Remap", "Graphics Processes", "Inforom",
]  # fmt: skip

# PCI bus ids of the eight A100s of a p4d.24xlarge; other shapes get synthesised ids.
_P4D_BUS_IDS = ["10:1C", "10:1D", "20:1C", "20:1D", "90:1C", "90:1D", "A0:1C", "A0:1D"]


@dataclass(frozen=True)
class FaultProfile:
    """How one fault kind shows up: the XIDs in the kernel log and the dcgmi error."""

    xids: tuple[tuple[int, str], ...]  # (XID, the driver's text after "<xid>, pid=..., name=..., ")
    test: str  # the dcgmi test that reports it (falls back to "software" when the level does not run it)
    error_id: int  # dcgmError_t
    error_category: int
    error_severity: int  # its severity in DCGM 4.2's table
    message: str  # DCGM's message for the error; {gpu} is the GPU index
    exit_code: int


_FELL_OFF_BUS = FaultProfile(
    ((79, "GPU has fallen off the bus."),), "software", 101, CATEGORY_SOFTWARE_XID, SEVERITY_TRIAGE,
    "Detected XID 79 for GPU {gpu}", EXIT_NVVS_ERROR,
)  # fmt: skip
_PENDING_ROW_REMAP = (85, CATEGORY_HARDWARE_MEMORY, SEVERITY_RESET, "GPU {gpu} had memory errors and row remappings "
                      "are pending")  # fmt: skip
_DBE = (48, "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 2, "
        "subpartition 0.")  # fmt: skip

FAULT_PROFILES: dict[str, FaultProfile] = {
    "xid79": _FELL_OFF_BUS,
    # DCGM_FR_VOLATILE_DBE_DETECTED is ISOLATE (hence 205); NVIDIA's next step for it is a GPU reset.
    "xid48": FaultProfile(
        (_DBE,), "memory", 4, CATEGORY_HARDWARE_MEMORY, SEVERITY_ISOLATE,
        "Detected 1 volatile double-bit ECC error(s) in GPU {gpu}.", EXIT_ISOLATE,
    ),
    "xid63": FaultProfile(
        ((63, "Row Remapper: New row (0x00000000012f3a80) marked for remapping, reset gpu to activate."),),
        "memory", *_PENDING_ROW_REMAP, EXIT_NVVS_ERROR,
    ),
    "xid64": FaultProfile(
        ((64, "Row Remapper Error: row remapping failed, out of spare rows for bank 0x3."),), "memory", 80,
        CATEGORY_HARDWARE_MEMORY, SEVERITY_ISOLATE, "GPU {gpu} had uncorrectable memory errors and row remapping "
        "failed.", EXIT_ISOLATE,
    ),
    "xid74": FaultProfile(
        ((74, "NVLink: fatal error detected on link 3(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)"),), "pcie", 14,
        CATEGORY_HARDWARE_NVLINK, SEVERITY_TRIAGE, "GPU {gpu}'s NvLink link 3 is currently down", EXIT_NVVS_ERROR,
    ),
    "xid94": FaultProfile(
        ((94, "Contained: SM (0x1). RST: Yes, D-RST: No"),), "memory", *_PENDING_ROW_REMAP, EXIT_NVVS_ERROR
    ),
    "xid95": FaultProfile(
        ((95, "Uncontained: FBHUB. RST: Yes, D-RST: No"),), "memory", *_PENDING_ROW_REMAP, EXIT_NVVS_ERROR
    ),
    "xid119": FaultProfile(
        ((119, "Timeout after 6s of waiting for RPC response from GPU{gpu} GSP! Expected function 76 "
          "(GSP_RM_CONTROL) (0x20800a4c 0x4)."),), "software", 101, CATEGORY_SOFTWARE_XID, SEVERITY_TRIAGE,
        "Detected XID 119 for GPU {gpu}", EXIT_NVVS_ERROR,
    ),
    # A double-bit error whose row could not be remapped: out of spare rows. DCGM up to 4.5 rates the row-remap
    # failure ISOLATE and NVIDIA's next step is support: the GPU is replaced.
    "isolate": FaultProfile(
        (_DBE, (64, "Row Remapper Error: row remapping failed, out of spare rows for bank 0x7.")), "memory", 80,
        CATEGORY_HARDWARE_MEMORY, SEVERITY_ISOLATE, "GPU {gpu} had uncorrectable memory errors and row remapping "
        "failed.", EXIT_ISOLATE,
    ),
    # The node is bad in the XID 79 way before the reboot it never comes back from.
    "never_returns": _FELL_OFF_BUS,
}  # fmt: skip

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
    return {"xid": xid, "gpuIndex": gpu["index"], "pciBusId": gpu["pciBusId"], "line": line, "count": 1}


def _error(profile: FaultProfile, gpu: int, message_key: str = "warning") -> dict[str, Any]:
    return {
        message_key: profile.message.format(gpu=gpu),
        "error_id": profile.error_id,
        "error_category": profile.error_category,
        "error_severity": profile.error_severity,
    }


def _failing_test(level: int, profile: FaultProfile | None) -> str | None:
    if profile is None:
        return None
    tests = [name for _, name, _, min_level in _TESTS if min_level <= level]
    return profile.test if profile.test in tests else "software"


def diag_json_v4(
    inventory: list[dict[str, Any]], level: int, profile: FaultProfile | None, bad_gpus: list[int],
    version: str = DCGM_VERSION,
) -> dict[str, Any]:  # fmt: skip
    """The document DCGM 4.x's ``dcgmi diag -r <level> -j`` prints."""
    failing = _failing_test(level, profile)
    categories: list[dict[str, Any]] = []
    for category, name, _, min_level in _TESTS:
        if min_level > level:
            continue
        results = []
        for gpu in inventory:
            entry: dict[str, Any] = {"entity_group": "GPU", "entity_group_id": 1, "entity_id": gpu["index"],
                                     "status": "Pass"}  # fmt: skip
            if name == failing and profile is not None and gpu["index"] in bad_gpus:
                entry["status"] = "Fail"
                entry["warnings"] = [_error(profile, gpu["index"])]
            results.append(entry)
        summary = "Fail" if any(r["status"] == "Fail" for r in results) else "Pass"
        test = {"name": name, "results": results, "test_summary": {"status": summary}}
        existing = next((c for c in categories if c["category"] == category), None)
        if existing is None:
            categories.append({"category": category, "tests": [test]})
        else:
            existing["tests"].append(test)
    return {
        "DCGM Diagnostic": {"test_categories": categories},
        "entity_groups": [
            {
                "entities": [{"device_id": "20b0", "entity_id": g["index"]} for g in inventory],
                "entity_group": "GPU",
                "entity_group_id": 1,
            }
        ],
        "metadata": {"Driver Version Detected": DRIVER_VERSION, "version": version},
    }


def diag_json_v3(
    inventory: list[dict[str, Any]], level: int, profile: FaultProfile | None, bad_gpus: list[int],
    version: str = "3.3.9",
) -> dict[str, Any]:  # fmt: skip
    """The document DCGM 3.x's ``dcgmi diag -r <level> -j`` prints: deployment tests one result each (an integer
    ``gpu_id`` and the message under ``warnings`` when they fail), then per-GPU results with a string ``gpu_id``."""
    failing = _failing_test(level, profile)
    deployment = []
    for name in _V3_DEPLOYMENT:
        result: dict[str, Any] = {"status": "Pass"}
        if failing == "software" and profile is not None and name == "Page Retirement/Row Remap" and bad_gpus:
            result = {"gpu_id": bad_gpus[0], "status": "Fail",
                      "warnings": [_error(profile, g, "warnings") for g in bad_gpus]}  # fmt: skip
        deployment.append({"name": name, "results": [result]})
    categories: list[dict[str, Any]] = [{"category": "Deployment", "tests": deployment}]
    for category, name, display, min_level in _TESTS:
        if min_level > level or not display:
            continue
        results = []
        for gpu in inventory:
            entry: dict[str, Any] = {"gpu_id": str(gpu["index"]), "status": "Pass"}
            if name == failing and profile is not None and gpu["index"] in bad_gpus:
                entry["status"] = "Fail"
                entry["warnings"] = [_error(profile, gpu["index"])]
            results.append(entry)
        existing = next((c for c in categories if c["category"] == category), None)
        if existing is None:
            categories.append({"category": category, "tests": [{"name": display, "results": results}]})
        else:
            existing["tests"].append({"name": display, "results": results})
    return {
        "DCGM GPU Diagnostic": {"test_categories": categories},
        "Driver Version Detected": DRIVER_VERSION,
        "GPU Device IDs": ["20b0" for _ in inventory],
        "version": version,
    }


@dataclass(frozen=True)
class CheckOutput:
    exit_code: int
    lines: list[str]  # what the container printed after start_lines(), in order; the last is the result line
    envelope: dict[str, Any]


def run_check(
    inventory: list[dict[str, Any]], level: int, fault_kind: str | None, bad_gpus: list[int],
    dcgm_version: str = DCGM_VERSION,
) -> CheckOutput:  # fmt: skip
    """The outcome of one DCGM check on a node whose active fault is ``fault_kind`` (None: healthy)."""
    profile = FAULT_PROFILES.get(fault_kind) if fault_kind else None
    by_index = {g["index"]: g for g in inventory}
    xids: list[dict[str, Any]] = []
    if profile is not None:
        xids = [_xid_entry(xid, text, by_index[i], app=False) for i in bad_gpus for xid, text in profile.xids]
    elif fault_kind == "app_crash":
        xids = [_xid_entry(APP_CRASH_XID[0], APP_CRASH_XID[1], by_index[i], app=True) for i in bad_gpus]
    exit_code = profile.exit_code if profile else EXIT_PASS
    build = diag_json_v3 if dcgm_version.startswith("3.") else diag_json_v4
    dcgmi = build(inventory, level, profile, bad_gpus, dcgm_version)
    envelope = {
        "version": ENVELOPE_VERSION,
        "dcgmiExitCode": exit_code,
        "diagLevel": level,
        "dcgmiOutput": json.dumps(dcgmi, indent=3, separators=(",", " : "), sort_keys=True) + "\n",  # as jsoncpp
        "dcgmiTruncated": False,
        "driverVersion": DRIVER_VERSION,
        "xids": xids,
        "gpus": inventory,
    }
    lines = [x["line"] for x in xids]
    lines.append(f"dcgm-check: dcgmi exited {exit_code}")
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
    """The result envelope from a check's log lines (None when the check never printed one), with dcgmi's
    output decoded into ``dcgmi`` for readers."""
    for message in reversed(messages):
        if message.startswith(RESULT_MARKER + " "):
            envelope: dict[str, Any] = json.loads(message[len(RESULT_MARKER) + 1 :])
            envelope["dcgmi"] = json.loads(envelope["dcgmiOutput"]) if envelope.get("dcgmiOutput") else None
            return envelope
    return None
