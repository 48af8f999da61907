"""What NVIDIA says each driver XID and each DCGM error asks for, and the action this project takes for it.

The facts are data in ``recovery/data/``, derived from NVIDIA's own files (../shared/reference/nvidia/ names their
origin; tests/unit/test_xid_catalog.py fails on any disagreement with them):

- ``xid-catalog.csv``: every XID of NVIDIA's XID catalog (``Xid-Catalog.xlsx``, October 2025, the spreadsheet
  behind https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html): mnemonic, the GPU generations
  that use it (A100/H100/B100/GB200), the immediate and investigatory resolution buckets, XID 154 linkage.
- ``xid-144-150-decode.csv``: the catalog's decode of the NVLink5 XIDs 144-150 by IntrInfo subcode and error
  status (layout V1 before driver R575, V2 from R575).
- ``dcgm-errors.csv``: every DCGM error id (``dcgmError_t``) with its severity in DCGM 3.3, 4.2, 4.4, 4.5 and 4.6
  (``dcgmlib/dcgm_errors.h`` and ``dcgmlib/src/dcgm_errors.c`` at NVIDIA/DCGM tags v3.3.9, v4.2.3, v4.4.2,
  v4.5.3, v4.6.0) and the action NVIDIA's NVSentinel takes for it.

The immediate-action bucket is the one a recovery system acts on; the investigatory bucket is for a human later.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

DATA = Path(__file__).with_name("data")
CATALOG_SOURCE = "https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html"
DECODE_SOURCE = f"{CATALOG_SOURCE} (XID 144-150 decode sheet)"
DCGM_SOURCE = "NVIDIA/DCGM dcgmlib/dcgm_errors.h + dcgmlib/src/dcgm_errors.c; NVIDIA/NVSentinel DCGM error actions"


class GpuAction(StrEnum):
    """What one GPU needs, cheapest first (the order is the severity order)."""

    IGNORE = "IGNORE"
    RESTART_APP = "RESTART_APP"
    RESET_GPU = "RESET_GPU"
    REBOOT = "REBOOT"
    REPLACE = "REPLACE"


ACTION_ORDER: tuple[GpuAction, ...] = tuple(GpuAction)


def most_severe(actions: Sequence[GpuAction]) -> GpuAction:
    return max(actions, key=ACTION_ORDER.index, default=GpuAction.IGNORE)


_A = GpuAction
# The catalog's resolution buckets that map onto one of our actions without looking at the message.
BUCKET_ACTIONS: MappingProxyType[str, GpuAction] = MappingProxyType(
    {
        "IGNORE": _A.IGNORE,
        "RESTART_APP": _A.RESTART_APP,
        "RESET_GPU": _A.RESET_GPU,
        "RESTART_BM": _A.REBOOT,  # restart the bare-metal host: an EC2 reboot
        "RESTART_VM": _A.REBOOT,  # the EC2 instance is the VM that owns the GPU
        # Solo: reset; with XID 63/64: drain and reset. The node is drained before any reset, so a reset either way.
        "WORKFLOW_XID_48": _A.RESET_GPU,
        # Unless its registers show only bits NVIDIA says to ignore (nvlink_error_action), the link needs
        # retraining, which a GPU reset does; the other bits sort causes for a human.
        "WORKFLOW_NVLINK_ERR": _A.RESET_GPU,
        "CHECK_UVM": _A.RESET_GPU,  # reset when UVM is in use, which every CUDA application does
        # Hands on the hardware (seating, cables) or support: on EC2 that means another host, i.e. replace the node.
        "CHECK_MECHANICALS": _A.REPLACE,
        "CONTACT_SUPPORT": _A.REPLACE,
        # A vGPU start error wants newer software/firmware: no node repair fixes it; the job is restarted.
        "UPDATE_SWFW": _A.RESTART_APP,
    }
)
# An XID NVIDIA does not list, lists as unused on A100/H100/B100/GB200, or lists without an immediate action
# is not evidence of a hardware fault by itself: the job is restarted and the DCGM check judges the GPU.
DEFAULT_XID_ACTION = GpuAction.RESTART_APP


@dataclass(frozen=True)
class XidEntry:
    xid: int
    mnemonic: str
    used_on: tuple[str, ...]  # GPU generations the catalog marks YES
    catalog_action: str  # the immediate-action bucket as NVIDIA spells it ("" when the catalog gives none)
    investigatory_action: str
    xid154_linked: bool  # a driver that reports XID 154 follows this XID with one


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@functools.cache
def xid_catalog() -> Mapping[int, XidEntry]:
    """NVIDIA's XID catalog, read at its first use: a step that sees no XID and no DCGM error (a healthy check)
    never parses the catalogs, and the others parse each once per Lambda environment (docs/benchmarks.md)."""
    return MappingProxyType(
        {
            int(r["code"]): XidEntry(
                int(r["code"]),
                r["mnemonic"],
                tuple(r["used_on"].split()),
                r["immediate_action"],
                r["investigatory_action"],
                r["xid154"] == "yes",
            )
            for r in _rows("xid-catalog.csv")
        }
    )


# ---------------------------------------------------------------------------------------- XID 154
# "GPU recovery action changed from 0x0 (None) to 0x2 (Node Reboot Required)": the value is NVML's
# nvmlDeviceGpuRecoveryAction_t; DCGM reports the same five as DCGM_FR_GPU_RECOVERY_* (dcgm_errors.h).
XID154_ACTIONS: MappingProxyType[int, tuple[str, GpuAction]] = MappingProxyType(
    {
        0: ("None", _A.IGNORE),
        1: ("GPU Reset Required", _A.RESET_GPU),
        2: ("Node Reboot Required", _A.REBOOT),
        3: ("Drain P2P", _A.RESET_GPU),  # DCGM rates DCGM_FR_GPU_RECOVERY_DRAIN_P2P RESET
        4: ("Drain and Reset", _A.RESET_GPU),
    }
)
_XID154 = re.compile(r"recovery action changed from .*? to (0x[0-9a-fA-F]+|\d+)")


def xid154_action(text: str) -> tuple[GpuAction, str] | None:
    """The action XID 154's message requires, or None when the message cannot be read."""
    match = _XID154.search(text)
    if not match:
        return None
    value = int(match.group(1), 0)
    name, action = XID154_ACTIONS.get(value, (f"unknown value {value}", _A.REBOOT))
    return action, f"XID 154: the driver requires {name} ({value:#x}) -> {action.value}"


# ---------------------------------------------------------------------------------------- XID 144-150
@dataclass(frozen=True)
class DecodeRow:
    xid: int
    unit: str
    patterns: tuple[str, str]  # IntrInfo bit patterns (V1 < R575, V2 >= R575), MSB first, "-" = any bit
    error_status: tuple[int, ...]  # empty: any
    action: str
    action2_patterns: tuple[str, str]
    action2: str


def _statuses(text: str) -> tuple[int, ...]:
    return tuple(int(s, 16) for s in text.split("/") if s.strip())


@functools.cache
def nvlink5_decode() -> tuple[DecodeRow, ...]:
    """The decode sheet of XID 144-150, read at its first use (as xid_catalog)."""
    return tuple(
        DecodeRow(
            int(r["xid"]),
            r["unit"],
            (r["intr_info_v1"], r["intr_info_v2"]),
            _statuses(r["error_status"]),
            r["action"],
            (r["action2_intr_info_v1"], r["action2_intr_info_v2"]),
            r["action2"],
        )
        for r in _rows("xid-144-150-decode.csv")
    )


NVLINK5_XIDS = frozenset(range(144, 151))
V2_DRIVER_BRANCH = 575
# "145, RLW_REMAP Fatal XC1 i0 Link 10 (0x00000082 0x00000040 0x00000000 ...)": IntrInfo, then error status.
_NVLINK5_FIELDS = re.compile(r"\b(\d+), (\S+) (\w+) .*?\((0x[0-9a-fA-F]+) (0x[0-9a-fA-F]+)")


def _bits_match(pattern: str, value: int) -> bool:
    if not pattern:
        return False
    width = len(pattern)
    return all(p == "-" or int(p) == (value >> (width - 1 - i)) & 1 for i, p in enumerate(pattern))


def driver_layouts(driver_version: str | None) -> tuple[int, ...]:
    """Which IntrInfo layouts (0: V1, 1: V2) a driver version may use; both when the version is unknown."""
    branch = (driver_version or "").split(".", 1)[0]
    if not branch.isdigit():
        return (0, 1)
    return (1,) if int(branch) >= V2_DRIVER_BRANCH else (0,)


def decode_nvlink5(xid: int, text: str, driver_version: str | None) -> tuple[str, str] | None:
    """(bucket, what matched) for an XID 144-150 message, or None when the decode table has no row for it."""
    match = _NVLINK5_FIELDS.search(text)
    if not match:
        return None
    intr, status = int(match.group(4), 16), int(match.group(5), 16)
    buckets: list[tuple[str, str]] = []
    # A status with several bits set is judged bit by bit (the table lists one bit per row).
    wanted = [status] + [1 << b for b in range(32) if status & (1 << b) and status != 1 << b]
    for layout in driver_layouts(driver_version):
        rows = [r for r in nvlink5_decode() if r.xid == xid and _bits_match(r.patterns[layout], intr)]
        for value in wanted:
            for row in rows:
                if row.error_status and value not in row.error_status:
                    continue
                bucket = row.action2 if _bits_match(row.action2_patterns[layout], intr) else row.action
                buckets.append((bucket, f"{row.unit} status {value:#010x} ({'V1' if layout == 0 else 'V2'})"))
        if buckets:
            break
    if not buckets:
        return None
    return max(buckets, key=lambda b: ACTION_ORDER.index(_decoded_action(b[0], None)))


def _decoded_action(bucket: str, xid154: GpuAction | None) -> GpuAction:
    if bucket == "XID_154_EVAL":  # take XID 154's action when the GPU logged one, else restart the application
        return xid154 if xid154 is not None else _A.RESTART_APP
    return BUCKET_ACTIONS.get(bucket, _A.RESET_GPU)


# ---------------------------------------------------------------------------------------- XID 74
# WORKFLOW_NVLINK_ERR (buckets sheet): of the seven registers in the message, bits NVIDIA says can be safely
# ignored (first register 0, 23, 30) or are an ECC threshold with no uncorrectable error, continue operation
# (fifth register 20, 23, 26, 29). Any other bit is a link, ECC or sympathetic error.
NVLINK_BENIGN_BITS: MappingProxyType[int, frozenset[int]] = MappingProxyType(
    {0: frozenset({0, 23, 30}), 4: frozenset({20, 23, 26, 29})}
)
_NVLINK_REGISTERS = re.compile(r"\((0x[0-9a-fA-F]+(?:,\s*0x[0-9a-fA-F]+){6})\)")


def nvlink_error_is_benign(text: str) -> bool:
    """Whether an XID 74 message's registers set some bits and only benign ones (no dump, or no bit: not)."""
    match = _NVLINK_REGISTERS.search(text)
    registers = [int(value, 16) for value in match.group(1).split(",")] if match else []
    return any(registers) and all(
        not value & ~sum(1 << bit for bit in NVLINK_BENIGN_BITS.get(index, frozenset()))
        for index, value in enumerate(registers)
    )


# ---------------------------------------------------------------------------------------- one XID in context
@dataclass(frozen=True)
class XidEvent:
    xid: int
    text: str = ""  # the driver's message (the kernel log line)


def xid_action(
    event: XidEvent, others: Sequence[XidEvent] = (), driver_version: str | None = None
) -> tuple[GpuAction, str]:
    """The action for one XID on one GPU and a sentence saying why; ``others`` are the GPU's other XIDs in the
    same window (XID 45 and 48 depend on them, XID_154_EVAL on an XID 154)."""
    xid, entry = event.xid, xid_catalog().get(event.xid)
    if entry is None:
        return DEFAULT_XID_ACTION, f"XID {xid} is not in NVIDIA's catalog: {DEFAULT_XID_ACTION.value} by default"
    head = f"XID {xid} ({entry.mnemonic}): catalog immediate action {entry.catalog_action or 'none'}"
    if not entry.used_on:
        return DEFAULT_XID_ACTION, f"{head}, but unused on A100/H100/B100/GB200: {DEFAULT_XID_ACTION.value}"
    if not entry.catalog_action:
        return DEFAULT_XID_ACTION, f"{head}: {DEFAULT_XID_ACTION.value} by default"
    bucket = entry.catalog_action
    if xid == 154:
        decoded = xid154_action(event.text)
        return decoded if decoded else (_A.REBOOT, f"{head}; the required action is unreadable: REBOOT")
    xid154 = _latest_154(others)
    if xid in NVLINK5_XIDS:
        found = decode_nvlink5(xid, event.text, driver_version)
        if found is None:
            fatal = re.search(r"\bFatal\b", event.text) is not None
            action = _A.RESET_GPU if fatal else _A.RESTART_APP
            return action, f"{head}; no row of the 144-150 decode matches ({'fatal' if fatal else 'non-fatal'}): " \
                           f"{action.value}"  # fmt: skip
        sub_bucket, what = found
        action = _decoded_action(sub_bucket, xid154)
        arrow = "" if action.value == sub_bucket else f" -> {action.value}"
        return action, f"{head}; 144-150 decode {what}: {sub_bucket}{arrow}"
    if bucket == "WORKFLOW_NVLINK_ERR" and nvlink_error_is_benign(event.text):
        return _A.IGNORE, f"{head}: only bits the register decode says to ignore or continue on -> IGNORE"
    if bucket == "WORKFLOW_XID_45":
        solo = not [o for o in others if o.xid not in (45, 154)]
        if solo:  # alone the catalog asks for a fabric-manager restart, which a host reboot performs
            return _A.REBOOT, f"{head}: alone on the GPU, RESTART_FM -> REBOOT"
        return _A.IGNORE, f"{head}: with other XIDs, IGNORE (they decide)"
    action = BUCKET_ACTIONS[bucket]
    suffix = "" if action.value == bucket else f" -> {action.value}"
    return action, head + suffix


def _latest_154(events: Sequence[XidEvent]) -> GpuAction | None:
    decoded = [xid154_action(e.text) for e in events if e.xid == 154]
    readable = [d for d in decoded if d is not None]
    return readable[-1][0] if readable else None


# ---------------------------------------------------------------------------------------- DCGM errors
class Severity(StrEnum):
    """dcgmErrorSeverity_t (dcgm_errors.h); the value is the enum's number."""

    NONE = "NONE"
    MONITOR = "MONITOR"
    ISOLATE = "ISOLATE"
    UNKNOWN = "UNKNOWN"
    TRIAGE = "TRIAGE"
    CONFIG = "CONFIG"
    RESET = "RESET"


SEVERITY_NUMBERS: tuple[Severity, ...] = tuple(Severity)
DCGM_TABLE_VERSIONS = ("3.3", "4.2", "4.4", "4.5", "4.6")
XID_ERROR_ID = 101  # DCGM_FR_XID_ERROR: "Detected XID n for GPU m"; the XID catalog judges it


@dataclass(frozen=True)
class DcgmError:
    id: int
    name: str
    category: str
    severities: Mapping[str, str]  # table version -> severity ("" when the id does not exist in that release)
    nvsentinel_action: str


@functools.cache
def dcgm_errors() -> Mapping[int, DcgmError]:
    """Every DCGM error id and its severities, read at its first use (as xid_catalog)."""
    return MappingProxyType(
        {
            int(r["id"]): DcgmError(
                int(r["id"]),
                r["name"],
                r["category"],
                MappingProxyType({v: r[f"severity_{v}"] for v in DCGM_TABLE_VERSIONS}),
                r["nvsentinel_action"],
            )
            for r in _rows("dcgm-errors.csv")
        }
    )


# NVSentinel's next step for an error, where it names one our workflow can take.
NVSENTINEL_ACTIONS: MappingProxyType[str, GpuAction] = MappingProxyType(
    {"COMPONENT_RESET": _A.RESET_GPU, "RESTART_BM": _A.REBOOT, "RESTART_VM": _A.REBOOT}
)
# Otherwise DCGM's severity decides: ISOLATE (drain the GPU; the next step is support) replaces the node,
# RESET resets the GPU, TRIAGE/UNKNOWN/CONFIG get the generic repair and a re-check, MONITOR/NONE no action.
SEVERITY_ACTIONS: MappingProxyType[Severity, GpuAction] = MappingProxyType(
    {
        Severity.NONE: _A.IGNORE,
        Severity.MONITOR: _A.IGNORE,
        Severity.ISOLATE: _A.REPLACE,
        Severity.UNKNOWN: _A.REBOOT,
        Severity.TRIAGE: _A.REBOOT,
        Severity.CONFIG: _A.REBOOT,
        Severity.RESET: _A.RESET_GPU,
    }
)
# A failure with neither a known error id nor a severity (a bare "Fail").
UNRATED_FAILURE_ACTION = GpuAction.REBOOT
_XID_IN_MESSAGE = re.compile(r"\bXID (\d+)", re.IGNORECASE)


def table_version(dcgm_version: str | None) -> str | None:
    """The severity table of the newest known release not newer than ``dcgm_version``; None when the version
    is unknown (a layout such as "4.x" is not a version)."""
    parts = re.findall(r"\d+", dcgm_version or "")
    if len(parts) < 2:  # major.minor
        return None
    wanted = (int(parts[0]), int(parts[1]))
    known = [v for v in DCGM_TABLE_VERSIONS if tuple(int(p) for p in v.split(".")) <= wanted]
    return known[-1] if known else DCGM_TABLE_VERSIONS[0]


def dcgm_severity(error_id: int | None, dcgm_version: str | None, reported: int | None) -> Severity | None:
    """The error's severity: from that DCGM release's table when the version is known, else as dcgmi printed
    it, else from the newest table."""
    error = dcgm_errors().get(error_id) if error_id is not None else None
    table = table_version(dcgm_version)
    if error is not None and table is not None and error.severities[table]:
        return Severity(error.severities[table])
    if reported is not None and 0 <= reported < len(SEVERITY_NUMBERS):
        return SEVERITY_NUMBERS[reported]
    newest = error.severities[DCGM_TABLE_VERSIONS[-1]] if error is not None else ""
    return Severity(newest) if newest else None


def _severity_source(error: DcgmError | None, dcgm_version: str | None, reported: int | None) -> str:
    table = table_version(dcgm_version)
    if error is not None and table is not None and error.severities[table]:
        return f"DCGM {table} table"
    if reported is not None:
        return "as dcgmi printed it" if table is None else f"as printed; not in the DCGM {table} table"
    return f"DCGM {DCGM_TABLE_VERSIONS[-1]} table"


def dcgm_error_action(
    error_id: int | None,
    dcgm_version: str | None,
    reported_severity: int | None = None,
    message: str = "",
    gpu_entity: bool = True,
) -> tuple[GpuAction, str]:
    """The action for one DCGM error that counts as a failure, and why."""
    error = dcgm_errors().get(error_id) if error_id is not None else None
    severity = dcgm_severity(error_id, dcgm_version, reported_severity)
    name = error.name if error else f"error {error_id}" if error_id is not None else "a failure without an error id"
    where = _severity_source(error, dcgm_version, reported_severity)
    head = f"{name}: {severity.value if severity else 'no severity'} ({where})"
    xid = _XID_IN_MESSAGE.search(message) if error_id == XID_ERROR_ID else None
    if xid:
        action, why = xid_action(XidEvent(int(xid.group(1)), message))
        return _on_entity(action, gpu_entity), f"{name} reports {why}"
    if error and error.nvsentinel_action in NVSENTINEL_ACTIONS:
        action = NVSENTINEL_ACTIONS[error.nvsentinel_action]
        head += f", NVSentinel {error.nvsentinel_action}"
    elif severity is None:
        action = UNRATED_FAILURE_ACTION
    elif severity == Severity.CONFIG and error and error.nvsentinel_action == "NONE":
        action = _A.IGNORE  # the test was skipped, disabled or aborted: says nothing about the hardware
    else:
        action = SEVERITY_ACTIONS[severity]
        if error and error.nvsentinel_action:
            head += f", NVSentinel {error.nvsentinel_action}"
    action = _on_entity(action, gpu_entity)
    return action, f"{head} -> {action.value}"


def _on_entity(action: GpuAction, gpu_entity: bool) -> GpuAction:
    """A GPU reset repairs GPUs only; a failing CPU, switch or link entity gets the reboot instead."""
    return _A.REBOOT if action == _A.RESET_GPU and not gpu_entity else action
