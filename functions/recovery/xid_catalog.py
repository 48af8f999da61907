"""What each NVIDIA driver XID and each DCGM error severity asks of an operator, as data.

Source of the XID rows: NVIDIA, "Analyzing Xid Errors with the Xid Catalog" (Ampere and newer GPUs),
https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html, column "Resolution Bucket (Immediate
Action)". The catalog's buckets are mapped onto this project's actions:

    IGNORE        -> IGNORE        (informational, or a consequence of another error)
    RESTART_APP   -> RESTART_APP   (the GPU is fine: restart the application, never the node)
    RESET_GPU     -> RESET_GPU     (nvidia-smi --gpu-reset; escalates to REBOOT when disabled or it fails)
    RESTART_BM    -> REBOOT        (restart the bare-metal host: an EC2 reboot)
    CONTACT_SUPPORT / RMA for a hardware fault -> REPLACE (quarantine the node)
    WORKFLOW_*    -> the action the workflow reaches in the common case, noted per row

Source of the severities: DCGM's public header dcgm_errors.h (``dcgmErrorSeverity_t``) and the DCGM user guide
("Diagnostics"): an error of ISOLATE severity makes ``dcgmi diag`` exit with DCGM_ST_NVVS_ISOLATE_ERROR (205).

The descriptions are this project's own words. Changing a row changes the verdicts: tests/unit/test_xid_catalog.py
asserts this table as a whole, so a change is a reviewed, deliberate one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

CATALOG_SOURCE = "https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html"
SEVERITY_SOURCE = "DCGM dcgm_errors.h dcgmErrorSeverity_t; DCGM user guide, Diagnostics"


class GpuAction(StrEnum):
    """What one GPU needs, cheapest first (the order is the severity order)."""

    IGNORE = "IGNORE"
    RESTART_APP = "RESTART_APP"
    RESET_GPU = "RESET_GPU"
    REBOOT = "REBOOT"
    REPLACE = "REPLACE"


ACTION_ORDER: tuple[GpuAction, ...] = tuple(GpuAction)


def most_severe(actions: list[GpuAction] | tuple[GpuAction, ...]) -> GpuAction:
    return max(actions, key=ACTION_ORDER.index, default=GpuAction.IGNORE)


@dataclass(frozen=True)
class XidEntry:
    xid: int
    name: str  # short name of the event
    catalog_action: str  # the catalog's immediate-action bucket, as NVIDIA spells it
    action: GpuAction  # what this project does about it
    repeat_action: GpuAction | None = None  # when the same GPU logs it again in one check (None: same action)
    note: str = ""


_A = GpuAction
# One row per XID. Keep the XID order.
XID_CATALOG: MappingProxyType[int, XidEntry] = MappingProxyType(
    {
        e.xid: e
        for e in (
            XidEntry(13, "graphics engine exception", "RESTART_APP", _A.RESTART_APP,
                     note="almost always the application (out-of-range access, illegal instruction)"),
            XidEntry(31, "GPU memory page fault", "RESTART_APP", _A.RESTART_APP,
                     note="the application touched an address it does not own"),
            XidEntry(43, "GPU stopped processing (channel reset)", "RESTART_APP", _A.RESTART_APP,
                     note="the application's context was torn down; the GPU keeps serving others"),
            XidEntry(45, "preemptive cleanup after an earlier error", "IGNORE", _A.IGNORE,
                     note="a consequence of another error or of the process being killed; judge that one"),
            XidEntry(48, "double-bit ECC error (DBE)", "WORKFLOW_XID_48", _A.RESET_GPU,
                     note="the XIDs that follow decide (63/64/94/95); alone, a reset retires or remaps the row; "
                          "DCGM reports a volatile DBE with ISOLATE severity, which replaces the GPU"),
            XidEntry(61, "internal micro-controller breakpoint", "RESET_GPU", _A.RESET_GPU),
            XidEntry(62, "internal micro-controller halt", "RESET_GPU", _A.RESET_GPU),
            XidEntry(63, "row remapping / page retirement recorded", "RESET_GPU", _A.RESET_GPU,
                     note="the remap takes effect at the next GPU reset"),
            XidEntry(64, "row remapping / page retirement failed", "CONTACT_SUPPORT", _A.REPLACE,
                     note="out of spare rows: the memory cannot heal itself"),
            XidEntry(69, "graphics engine class error", "RESET_GPU", _A.RESET_GPU),
            XidEntry(74, "NVLink error", "WORKFLOW_NVLINK_ERR", _A.RESET_GPU,
                     note="a reset retrains the links; a link that stays down after a reboot is replaced"),
            XidEntry(79, "GPU has fallen off the bus", "RESTART_BM", _A.REBOOT, repeat_action=_A.REPLACE,
                     note="the GPU is unreachable, so nvidia-smi cannot reset it; falling off again means hardware"),
            XidEntry(92, "high single-bit ECC error rate", "IGNORE", _A.IGNORE,
                     note="corrected errors; DCGM's memory tests decide whether the memory is failing"),
            XidEntry(94, "contained ECC error", "RESTART_APP", _A.RESTART_APP,
                     note="only the application that touched the row was hit; the GPU keeps running"),
            XidEntry(95, "uncontained ECC error", "RESET_GPU", _A.RESET_GPU,
                     note="every application on the GPU is affected until the GPU is reset"),
            XidEntry(109, "context switch timeout", "RESTART_APP", _A.RESTART_APP),
            XidEntry(119, "GSP RPC timeout", "RESET_GPU", _A.RESET_GPU),
            XidEntry(120, "GSP error", "RESET_GPU", _A.RESET_GPU),
            XidEntry(140, "unrecovered ECC error", "RESET_GPU", _A.RESET_GPU),
        )
    }
)  # fmt: skip

# An XID the table does not list: NVIDIA's catalog files most unlisted codes under CONTACT_SUPPORT, but replacing
# hardware on an unknown code is too costly; a reboot is the generic repair and a fault that survives it is
# quarantined anyway.
UNKNOWN_XID_ACTION = GpuAction.REBOOT


class Severity(StrEnum):
    NONE = "NONE"
    MONITOR = "MONITOR"
    ISOLATE = "ISOLATE"
    UNKNOWN = "UNKNOWN"
    TRIAGE = "TRIAGE"
    CONFIG = "CONFIG"
    RESET = "RESET"


# dcgmErrorSeverity_t value -> (name, what a GPU failing with it needs).
DCGM_SEVERITIES: MappingProxyType[int, tuple[Severity, GpuAction]] = MappingProxyType(
    {
        0: (Severity.NONE, GpuAction.IGNORE),
        1: (Severity.MONITOR, GpuAction.IGNORE),  # worth watching, no action now
        2: (Severity.ISOLATE, GpuAction.REPLACE),  # DCGM: isolate the GPU (dcgmi exits 205)
        3: (Severity.UNKNOWN, GpuAction.REBOOT),
        4: (Severity.TRIAGE, GpuAction.REBOOT),  # needs investigation: the generic repair, then re-check
        5: (Severity.CONFIG, GpuAction.REBOOT),  # configuration (driver, persistence, clocks): a reboot restores it
        6: (Severity.RESET, GpuAction.RESET_GPU),  # DCGM: a GPU reset clears it
    }
)
# A failed DCGM result that carries no severity (DCGM 3.x before severities, or a bare failure).
UNRATED_FAILURE_ACTION = GpuAction.REBOOT


def xid_action(xid: int, occurrences: int = 1) -> tuple[GpuAction, str]:
    """The action for one XID on one GPU and a sentence saying why."""
    entry = XID_CATALOG.get(xid)
    if entry is None:
        return UNKNOWN_XID_ACTION, f"XID {xid} is not in the catalog table: {UNKNOWN_XID_ACTION.value} by default"
    action = entry.repeat_action if entry.repeat_action and occurrences > 1 else entry.action
    why = f"XID {xid} ({entry.name}): NVIDIA catalog immediate action {entry.catalog_action}"
    if action is not entry.action:
        why += f"; logged {occurrences} times, so {action.value}"
    elif entry.action.value != entry.catalog_action:
        why += f" -> {action.value}"
    return action, why


def severity_action(severity: int | None) -> tuple[GpuAction, str]:
    if severity is None:
        return UNRATED_FAILURE_ACTION, f"failed DCGM test without a severity: {UNRATED_FAILURE_ACTION.value}"
    name, action = DCGM_SEVERITIES.get(severity, (Severity.UNKNOWN, GpuAction.REBOOT))
    return action, f"DCGM severity {name.value} ({severity}) -> {action.value}"
