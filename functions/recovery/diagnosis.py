"""Turn a finished DCGM check into a verdict. Pure: the caller fetches the log text.

Inputs: the check container's exit code (dcgmi's: the wrapper exits with it) and its output: the wrapper's
``GPU_RECOVERY_RESULT {json}`` envelope line (dcgmi's output as a JSON string, the kernel's XID lines, the GPU map,
boot time), raw ``dcgmi diag -j`` JSON, dcgmi's plain text, or a kernel log alone.

dcgmi's JSON (NVIDIA/DCGM ``dcgmi/Diag.cpp``, ``nvvs/include/NvvsJsonStrings.h``):
- DCGM 4.x: ``"DCGM Diagnostic"``; the version at ``metadata.version``; results by ``entity_group``/``entity_id``;
  errors not tied to an entity under each test's ``test_summary``.
- DCGM 3.x: ``"DCGM GPU Diagnostic"``; the version at the top level; per-GPU results with a string ``gpu_id``;
  deployment (software) tests with an integer ``gpu_id`` and the message under ``warnings`` inside each warning.
- Both print a WARN result as ``Fail``. dcgmi's exit code says what counted: 0 nothing failed, 226
  (DCGM_ST_NVVS_ERROR, -30) an error was reported (on a failed test, or attached to a passing result in 4.x),
  205 (DCGM_ST_NVVS_ISOLATE_ERROR, -51) one of them has ISOLATE severity, 203 (DCGM_ST_NVVS_KILLED) killed,
  128+N a signal. So with exit 0 every error printed is a warning; with 205/226 every error counts.

Each counted DCGM error is judged by its id in that DCGM release's table (xid_catalog.dcgm_error_action), each XID
in the kernel log by NVIDIA's XID catalog (xid_catalog.xid_action); only XIDs since the GPU's last boot (and
since ``since``, e.g. the last reset) count. Each GPU gets the most severe action, the node the most severe of its
GPUs. When DCGM's output cannot be trusted (killed, unreadable, runtime error, unknown version, nothing ran) the
XIDs still decide if they call for a repair; otherwise the verdict is INCONCLUSIVE, never HEALTHY.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from recovery.models import RepairAction, VerdictStatus
from recovery.requests import GpuFinding, Verdict
from recovery.xid_catalog import (
    GpuAction,
    Severity,
    XidEvent,
    dcgm_error_action,
    dcgm_severity,
    most_severe,
    xid_action,
    xid_catalog,
)

# The check wrapper prints its result on one line with this marker, among whatever else the container logs.
RESULT_MARKER = "GPU_RECOVERY_RESULT "
ENVELOPE_VERSIONS = frozenset({1, 2})
DCGM_MAJOR_VERSIONS = frozenset({3, 4})
DCGMI_PASS_EXIT = 0
DCGMI_TEST_FAILED_EXIT = 226
DCGMI_ISOLATE_EXIT = 205
DCGMI_KILLED_EXIT = 203
SIGNAL_EXIT_BASE = 128
MAX_SIGNAL = 64
REPORT_KEYS = {"DCGM Diagnostic": 4, "DCGM GPU Diagnostic": 3}
GPU_ENTITY = "GPU"
# Distinct XID messages kept per GPU in a verdict (one DynamoDB item, one state payload); repeats are counted.
MAX_XIDS_PER_GPU = 10
# NVRM: Xid (PCI:0000:10:1c): 79, pid=..., name=..., text
XID_LINE = re.compile(r"NVRM: Xid \((?:PCI:)?([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2})[^)]*\): (\d+)")
# The first kernel line of every boot; a host log (/var/log/messages, journalctl) spans reboots.
BOOT_MARKER = re.compile(r"\bLinux version \d+\.\d+|^-- (Boot [0-9a-f]+|Reboot) --")
_ISO_TIME = re.compile(r"^\s*(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?:[.,](\d+))?(Z|[+-]\d{2}:?\d{2})?")
_CTIME = re.compile(r"^\s*\[(\w{3} \w{3} +\d+ \d{2}:\d{2}:\d{2} \d{4})\]")
_SYSLOG_TIME = re.compile(r"^\s*(\w{3} +\d+ \d{2}:\d{2}:\d{2}) ")
_MONOTONIC = re.compile(r"^\s*(?:\S+ kernel: )?\[\s*(\d+\.\d+)\]")

_TO_REPAIR = {
    GpuAction.IGNORE: RepairAction.NONE,
    GpuAction.RESTART_APP: RepairAction.RESTART_APP,
    GpuAction.RESET_GPU: RepairAction.RESET_GPU,
    GpuAction.REBOOT: RepairAction.REBOOT,
    GpuAction.REPLACE: RepairAction.REPLACE,
}


# ---------------------------------------------------------------------------------------- the check task
def check_task(check: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ECS task description of the check: the .sync result, or the task JSON a failed .sync carries
    in its Cause. None when the check never ran to a stop (placement failure, timeout)."""
    if "task" in check:
        return dict(check["task"])
    if check.get("Error") == "States.TaskFailed":
        try:
            cause = json.loads(check.get("Cause") or "")
        except json.JSONDecodeError:
            return None
        if isinstance(cause, dict) and "TaskArn" in cause:
            return cause
    return None


def container_exit_code(task: Mapping[str, Any], container_name: str) -> int | None:
    for container in task.get("Containers", []):
        if container.get("Name") == container_name:
            code = container.get("ExitCode")
            return int(code) if code is not None else None
    return None


# ---------------------------------------------------------------------------------------- reading output
def parse_result(log_text: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """The check's result: the wrapper's envelope, or raw dcgmi output (JSON or text) wrapped like one.
    Returns (result, problem); ``result["dcgmi"]`` is dcgmi's JSON or None, ``problem`` says why it is missing.
    XID lines anywhere in the text are collected when the envelope carries none (a pasted kernel log)."""
    if not log_text or not log_text.strip():
        return None, "no DCGM output in the check's log stream"
    result, problem = _envelope_or_raw(log_text)
    if result is not None and not result.get("xids"):
        result["xids"] = xids_from_text(log_text, result.get("gpus") or [])
    return result, problem


def _envelope_or_raw(log_text: str) -> tuple[dict[str, Any] | None, str | None]:
    marker = RESULT_MARKER.strip()
    for line in log_text.splitlines():
        at = line.find(marker)
        if at < 0 or not line[at + len(marker) :].lstrip().startswith("{"):
            continue
        try:
            envelope = json.loads(line[at + len(marker) :].strip())
        except json.JSONDecodeError as error:
            return {"xids": []}, f"the check's result line is not valid JSON ({error.msg}): truncated?"
        if not isinstance(envelope, dict):
            return {"xids": []}, "the check's result line is not a JSON object"
        version = envelope.get("version")
        if version is not None and version not in ENVELOPE_VERSIONS:
            known = sorted(ENVELOPE_VERSIONS)
            return {"xids": []}, f"unknown result envelope version {version!r} (this analyzer reads {known})"
        if "dcgmiOutput" in envelope:  # version 2: dcgmi's output as the wrapper captured it, as a string
            # dcgmi writes its results to stdout; when that is empty its stderr says why.
            output = str(envelope.get("dcgmiOutput") or "") or str(envelope.get("dcgmiStderr") or "")
            dcgmi, problem = _dcgmi_from_text(output)
            if envelope.get("dcgmiTruncated") and problem:
                problem = f"dcgmi's output was cut at the wrapper's size limit ({problem})"
            return {**envelope, "dcgmi": dcgmi}, problem
        return envelope, None if envelope.get("dcgmi") is not None else "the check's result carries no dcgmi output"
    dcgmi, problem = _dcgmi_from_text(log_text)
    if isinstance(dcgmi, dict) and "dcgmi" in dcgmi:  # an envelope pasted without its marker
        return dcgmi, None
    return {"dcgmi": dcgmi, "xids": [], "gpus": []}, problem


def _dcgmi_from_text(text: str) -> tuple[Any, str | None]:
    """dcgmi's JSON document in ``text`` (first '{' to last '}'), or why there is none."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0:
        lines = [line.strip() for line in text.splitlines() if line.strip() and not XID_LINE.search(line)]
        if not lines:
            return None, "no dcgmi output" if not text.strip() else "no dcgmi output, only kernel XID lines"
        return None, f"dcgmi printed no JSON: {' | '.join(lines[-3:])[:300]}"
    if end <= start:
        return None, "dcgmi's JSON is not valid (no closing brace): truncated?"
    try:
        return json.loads(text[start : end + 1]), None
    except json.JSONDecodeError as error:
        return None, f"dcgmi's JSON is not valid ({error.msg}): truncated?"


def _pci_key(pci: str) -> str:
    """'00000000:10:1C.0' (nvidia-smi) and 'PCI:0000:10:1c' (the driver) -> '0:10:1c'. The domain counts: on
    GB200 every GPU sits at bus 01, device 00 of its own domain (0008:01:00, 0009:01:00, ...)."""
    parts = pci.removeprefix("PCI:").split(".")[0].lower().split(":")
    domain = (parts[-3].lstrip("0") or "0") if len(parts) > 2 else "0"  # domain:bus:device
    return ":".join([domain, *parts[-2:]])


def xids_from_text(text: str, gpus: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The driver's XID lines in a log, from the last boot on (a host log can span reboots)."""
    by_pci = {_pci_key(str(g.get("pciBusId", ""))): g.get("index") for g in gpus if g.get("pciBusId")}
    found: list[dict[str, Any]] = []
    for line in text.splitlines():
        if BOOT_MARKER.search(line):
            found = []
            continue
        match = XID_LINE.search(line)
        if match:
            pci = match.group(1)
            found.append(
                {"xid": int(match.group(2)), "gpuIndex": by_pci.get(_pci_key(pci)), "pciBusId": pci,
                 "line": line.strip()}
            )  # fmt: skip
    return found


def line_time(line: str, boot_time: datetime | None, reference: datetime | None) -> datetime | None:
    """When a kernel line was logged: ISO (dmesg --time-format iso, journalctl -o short-iso), ctime (dmesg -T),
    syslog (year from ``reference``), or seconds since boot (dmesg) with ``boot_time``. None when unknown."""
    if match := _ISO_TIME.search(line):
        zone = (match.group(3) or "+00:00").replace("Z", "+00:00")
        zone = zone if ":" in zone else f"{zone[:3]}:{zone[3:]}"
        stamp = datetime.fromisoformat(f"{match.group(1).replace(' ', 'T')}{zone}")
        return stamp + timedelta(microseconds=int((match.group(2) or "0")[:6].ljust(6, "0")))
    if match := _CTIME.search(line):
        return datetime.strptime(" ".join(match.group(1).split()), "%a %b %d %H:%M:%S %Y").replace(tzinfo=UTC)
    if (match := _SYSLOG_TIME.search(line)) and reference is not None:
        stamp = datetime.strptime(f"{reference.year} {' '.join(match.group(1).split())}", "%Y %b %d %H:%M:%S")
        stamp = stamp.replace(tzinfo=UTC)
        return stamp.replace(year=stamp.year - 1) if stamp > reference + timedelta(days=1) else stamp
    if (match := _MONOTONIC.search(line)) and boot_time is not None:
        return boot_time + timedelta(seconds=float(match.group(1)))
    return None


def _epoch(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int | float) and value > 0 else None


def recent_xids(result: Mapping[str, Any], since: datetime | None) -> tuple[list[dict[str, Any]], list[str]]:
    """The XIDs that count: logged after the host's boot and after ``since``; and notes on those left out."""
    boot, checked = _epoch(result.get("bootTime")), _epoch(result.get("checkTime"))
    kept, before_boot, before_since = [], 0, 0
    for x in result.get("xids") or []:
        if x.get("xid") is None:
            continue
        when = line_time(str(x.get("line", "")), boot, checked)
        if when is not None and boot is not None and when < boot:
            before_boot += 1
        elif when is not None and since is not None and when < since:
            before_since += 1
        else:
            kept.append(dict(x))
    notes = []
    if before_boot:
        notes.append(f"{before_boot} XID line(s) logged before the host's last boot do not count")
    if before_since and since is not None:
        notes.append(f"{before_since} XID line(s) logged before {since.isoformat()} do not count (stale)")
    return kept, notes


# ---------------------------------------------------------------------------------------- dcgmi's report
@dataclass
class DcgmResult:
    entity: str  # entity_group: "GPU", "CPU", ...; "" for a test-level (node) result
    index: int | None
    test: str
    status: str  # pass / fail / skip / warn
    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DiagReport:
    version: str  # the DCGM version dcgmi reports (or was given), else its layout "3.x" / "4.x"
    results: list[DcgmResult]
    runtime_error: str | None = None
    driver_version: str | None = None


def read_report(dcgmi: Any, version_hint: str | None = None) -> tuple[DiagReport | None, str | None]:
    """The results of a dcgmi JSON document, or why it cannot be read."""
    if not isinstance(dcgmi, dict):
        return None, "the dcgmi output is not a JSON object"
    if isinstance(dcgmi.get("iterations"), list) and dcgmi["iterations"]:  # dcgmi diag --iterations N
        return read_report(dcgmi["iterations"][-1], version_hint)
    key = next((k for k in REPORT_KEYS if k in dcgmi), None)
    body = dcgmi[key] if key and isinstance(dcgmi[key], dict) else {}
    metadata: dict[str, Any] = dcgmi["metadata"] if isinstance(dcgmi.get("metadata"), dict) else {}
    reported = str(metadata.get("version") or dcgmi.get("version") or body.get("version") or "")
    version = reported or version_hint or ""
    major = version.split(".", maxsplit=1)[0]
    if version and (not major.isdigit() or int(major) not in DCGM_MAJOR_VERSIONS):
        return None, f"unknown DCGM version {version!r} (this analyzer reads DCGM 3.x and 4.x)"
    runtime_error = body.get("runtime_error") or dcgmi.get("runtime_error")
    driver = metadata.get("Driver Version Detected") or dcgmi.get("Driver Version Detected")
    if key is None:
        if runtime_error:
            return DiagReport(version or "unknown", [], str(runtime_error), driver), None
        return None, "not a dcgmi diag document (neither 'DCGM Diagnostic' nor 'DCGM GPU Diagnostic')"
    results: list[DcgmResult] = []
    for category in body.get("test_categories") or []:
        for test in category.get("tests") or []:
            name = str(test.get("name", "?"))
            for result in test.get("results") or []:
                status, errors = str(result.get("status", "")).lower(), _errors(result)
                for entity, index in _entities(result):
                    results.append(DcgmResult(entity, index, name, status, errors))
            summary = test.get("test_summary") or {}
            if _errors(summary):  # errors dcgmi could not tie to an entity
                results.append(DcgmResult("", None, name, str(summary.get("status", "")).lower(), _errors(summary)))
    layout = f"{REPORT_KEYS[key]}.x"
    return DiagReport(version or layout, results, str(runtime_error) if runtime_error else None, driver), None


def _errors(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A result's errors; DCGM 3.x deployment tests put the message under "warnings" inside each one."""
    errors = []
    for w in result.get("warnings") or []:
        if isinstance(w, dict):
            errors.append({**w, "warning": str(w.get("warning") or w.get("warnings") or "")})
        elif isinstance(w, str):
            errors.append({"warning": w})
    return errors


def _entities(result: Mapping[str, Any]) -> list[tuple[str, int | None]]:
    if "entity_id" in result:
        group = str(result.get("entity_group") or GPU_ENTITY)
        return [(group, _int(result["entity_id"]))]
    for key in ("gpu_id", "gpu_ids"):
        value = result.get(key)
        if value is None or value == "":
            continue
        values = value if isinstance(value, list) else str(value).split(",")
        indexes = [_int(v) for v in values if _int(v) is not None]
        return [(GPU_ENTITY, i) for i in indexes] or [("", None)]
    return [("", None)]


def _int(value: Any) -> int | None:
    text = str(value).strip()
    return int(text) if text.isdigit() else None


# ---------------------------------------------------------------------------------------- per-entity findings
@dataclass
class _Findings:
    """Findings per entity, keyed (entity group, index), and the actions each calls for."""

    inventory: Mapping[int | None, Mapping[str, Any]]
    task_gpu_ids: Sequence[str] | None
    findings: dict[tuple[str, int | None], GpuFinding] = field(default_factory=dict)
    actions: dict[tuple[str, int | None], list[GpuAction]] = field(default_factory=dict)

    def get(self, entity: str, index: int | None) -> tuple[tuple[str, int | None], GpuFinding]:
        # A result without an entity group but with a GPU id is a GPU's (DCGM 3.x); without either, the node's.
        key = (GPU_ENTITY if index is not None and entity in ("", GPU_ENTITY) else entity, index)
        if key not in self.findings:
            is_gpu = key[0] == GPU_ENTITY
            gpu = self.inventory.get(index, {}) if is_gpu else {}
            ids = self.task_gpu_ids
            used = gpu["uuid"] in ids if ids is not None and gpu.get("uuid") else None
            label = None if is_gpu or not key[0] else f"{key[0]} {index}" if index is not None else key[0]
            self.findings[key] = GpuFinding(index=index if is_gpu else None, entity=label, uuid=gpu.get("uuid"),
                                            pci_bus_id=gpu.get("pciBusId"), used_by_failed_task=used)  # fmt: skip
            self.actions[key] = []
        return key, self.findings[key]

    def add_dcgm(self, report: DiagReport, exit_code: int | None) -> None:
        """DCGM's errors on GPUs count as failures when dcgmi's exit code says so (205, 226, another non-zero
        code); with exit 0 they are warnings. dcgmi's exit code ignores other entities (a Grace CPU): a failed
        result there counts by its own status."""
        failing_exit = exit_code not in (None, DCGMI_PASS_EXIT)
        any_error = failing_exit and any(r.errors for r in report.results if r.status != "skip")
        for result in report.results:
            if result.status == "skip" or (result.status == "pass" and not result.errors):
                continue
            key, f = self.get(result.entity, result.index)
            gpu_entity = key[0] in (GPU_ENTITY, "")  # dcgmi counts errors on no entity as the GPUs'
            counts = failing_exit if gpu_entity else result.status == "fail"
            if counts and (result.errors or not any_error or not gpu_entity) and result.test not in f.failed_tests:
                f.failed_tests.append(result.test)
            for error in result.errors or [{}]:
                self._add_error(key, f, report.version, result, error, counts=counts, exit_code=exit_code,
                                explained=bool(any_error and gpu_entity))  # fmt: skip

    def _add_error(
        self,
        key: tuple[str, int | None],
        f: GpuFinding,
        version: str,
        result: DcgmResult,
        error: Mapping[str, Any],
        *,
        counts: bool,
        exit_code: int | None,
        explained: bool,
    ) -> None:
        error_id, reported = _int(error.get("error_id")), _int(error.get("error_severity"))
        message = str(error.get("warning", ""))
        severity = dcgm_severity(error_id, version, reported)
        f.dcgm.append(
            {"test": result.test, "status": result.status, "errorId": error_id, "category": error.get("error_category"),
             "severity": reported, "severityName": severity.value if severity else None, "message": message}
        )  # fmt: skip
        gpu_entity = key[0] in (GPU_ENTITY, "")
        if not counts:
            action, why = GpuAction.IGNORE, "a warning (dcgmi exit 0): no action"
        elif not result.errors and explained:
            return  # dcgmi prints WARN and not-run as Fail too; the errors it reported explain its exit code
        else:
            action, why = dcgm_error_action(error_id, version, reported, message, gpu_entity)
            if action == GpuAction.REPLACE and gpu_entity and exit_code != DCGMI_ISOLATE_EXIT:
                # dcgmi exits 205 exactly when it rates an error on a GPU ISOLATE; without it the output and the
                # table disagree, so the reversible repair and a re-check come first.
                action, why = GpuAction.REBOOT, f"{why}; but dcgmi did not exit 205: REBOOT and re-check"
        self.actions[key].append(action)
        f.why.append(f"{result.test}: {why}")

    def add_xids(self, xids: Sequence[Mapping[str, Any]], driver_version: str | None) -> None:
        # By GPU index; a line whose PCI address is not in the GPU map (a pasted kernel log) by that address.
        by_gpu: dict[tuple[int | None, str], list[Mapping[str, Any]]] = {}
        for x in xids:
            index = x.get("gpuIndex")
            by_gpu.setdefault((index, "" if index is not None else str(x.get("pciBusId") or "")), []).append(x)
        for (index, pci), entries in by_gpu.items():
            if index is not None:
                key, f = self.get(GPU_ENTITY, index)
            else:
                key, f = self.get(f"GPU at PCI:{pci}" if pci else "", None)
                f.pci_bus_id = f.pci_bus_id or pci or None
            events = [XidEvent(int(x["xid"]), str(x.get("line", ""))) for x in entries]
            seen: dict[tuple[int, str], dict[str, Any]] = {}
            for event, entry in zip(events, entries, strict=True):
                action, why = xid_action(event, events, driver_version)
                self.actions[key].append(action)
                message = event.text[event.text.find("NVRM: Xid") :]
                if (event.xid, message) in seen:
                    seen[(event.xid, message)]["count"] += int(entry.get("count") or 1)
                    continue
                catalog = xid_catalog().get(event.xid)
                seen[(event.xid, message)] = {
                    "xid": event.xid, "name": catalog.mnemonic if catalog else "unknown XID",
                    "catalogAction": catalog.catalog_action if catalog else None, "action": action.value,
                    "line": str(entry.get("line", ""))[:300], "count": int(entry.get("count") or 1),
                }  # fmt: skip
                if why not in f.why:
                    f.why.append(why)
            f.xids = list(seen.values())[:MAX_XIDS_PER_GPU]
            if len(seen) > MAX_XIDS_PER_GPU:
                f.why.append(f"{len(seen) - MAX_XIDS_PER_GPU} more distinct XID messages not listed")

    def done(self) -> list[GpuFinding]:
        for key, f in self.findings.items():
            f.action = most_severe(self.actions[key]).value
        ordered = sorted(self.findings.items(), key=lambda kv: (kv[0][0] != GPU_ENTITY, kv[0][0], kv[0][1] or 0))
        return [f for _, f in ordered]


def gpu_findings(
    report: DiagReport | None,
    exit_code: int | None,
    xids: Sequence[Mapping[str, Any]],
    gpus: Sequence[Mapping[str, Any]],
    task_gpu_ids: Sequence[str] | None,
    *,
    driver_version: str | None = None,
) -> list[GpuFinding]:
    """One finding per GPU (or other DCGM entity) that has something to say, GPUs first in index order."""
    findings = _Findings({g.get("index"): g for g in gpus}, task_gpu_ids)
    if report is not None:
        findings.add_dcgm(report, exit_code)
    findings.add_xids(xids, driver_version)
    return findings.done()


def _label(f: GpuFinding) -> str:
    if f.entity:
        return f.entity
    return f"GPU {f.index}" if f.index is not None else "an unidentified GPU"


def _usage_notes(gpus: Sequence[GpuFinding], task_gpu_ids: Sequence[str] | None) -> list[str]:
    if task_gpu_ids is None:
        return []
    return [
        f"{_label(f)} was not used by the failed task; its fault still counts"
        for f in gpus
        if f.used_by_failed_task is False and f.action not in (GpuAction.IGNORE, GpuAction.RESTART_APP)
    ]


def _gpu_reasons(gpus: Sequence[GpuFinding]) -> list[str]:
    return [f"{_label(f)} -> {f.action}: {'; '.join(f.why)}" for f in gpus if f.action != GpuAction.IGNORE]


# ---------------------------------------------------------------------------------------- the verdict
def diagnose(
    exit_code: int | None,
    log_text: str | None,
    task_gpu_ids: Sequence[str] | None = None,
    *,
    since: datetime | None = None,
    dcgm_version: str | None = None,
) -> Verdict:
    """The verdict on one check's exit code and output. The exit code may come from the envelope
    (``dcgmiExitCode``) when the caller has none (a pasted log). XIDs logged before ``since`` (the last GPU
    reset, the failed task's start) do not count. ``dcgm_version`` is used when the output does not say."""
    result, problem = parse_result(log_text)
    result = result or {}
    if exit_code is None and isinstance(result.get("dcgmiExitCode"), int):
        exit_code = int(result["dcgmiExitCode"])
    report, report_problem = (None, problem) if result.get("dcgmi") is None else read_report(result["dcgmi"],
                                                                                           dcgm_version)  # fmt: skip
    dcgm_problem = report_problem or problem
    xids, xid_notes = recent_xids(result, since)
    driver = (report.driver_version if report else None) or result.get("driverVersion")
    inferred: list[str] = []
    if exit_code is None and report is not None and not report.runtime_error:
        exit_code = _inferred_exit(report)
        inferred = [f"no exit code given: judged on the dcgmi JSON alone (as if dcgmi exited {exit_code})"]
    gpus = gpu_findings(report, exit_code, xids, result.get("gpus") or [], task_gpu_ids, driver_version=driver)
    common: dict[str, Any] = {
        "exit_code": exit_code,
        "gpus": gpus,
        "findings": _flat_findings(gpus),
        "dcgm_version": report.version if report else dcgm_version,
    }
    node_action = most_severe([GpuAction(f.action) for f in gpus])
    notes = [*inferred, *xid_notes]

    def untrusted(reason: str, floor: GpuAction = GpuAction.IGNORE, floor_why: str = "") -> Verdict:
        """DCGM said nothing usable: the kernel's XIDs decide when they call for a repair."""
        action = most_severe([node_action, floor])
        if action in (GpuAction.IGNORE, GpuAction.RESTART_APP):
            noted = [f"{_label(f)}: {'; '.join(f.why)}" for f in gpus if f.xids]
            return Verdict(status=VerdictStatus.INCONCLUSIVE, action=RepairAction.NONE,
                           reasons=[reason, *notes, *noted], **common)  # fmt: skip
        lead = [reason, floor_why] if floor_why and action == floor else [f"{reason}; the kernel log's XIDs decide"]
        reasons = [*lead, *notes, *_gpu_reasons(gpus), *_usage_notes(gpus, task_gpu_ids)]
        return Verdict(status=VerdictStatus.UNHEALTHY, action=_TO_REPAIR[action], reasons=reasons, **common)

    if exit_code is None:
        return untrusted(f"no exit code and {dcgm_problem or 'no readable DCGM result'}")
    if exit_code == DCGMI_KILLED_EXIT or SIGNAL_EXIT_BASE < exit_code <= SIGNAL_EXIT_BASE + MAX_SIGNAL:
        how = "dcgmi was killed" if exit_code == DCGMI_KILLED_EXIT else f"signal {exit_code - SIGNAL_EXIT_BASE}"
        return untrusted(f"the DCGM check was killed (exit {exit_code}, {how}): it says nothing about the GPUs")
    if report is None or report.runtime_error:
        what = f"dcgmi could not run the diagnostic: {report.runtime_error}" if report else dcgm_problem
        if exit_code == DCGMI_ISOLATE_EXIT:
            return untrusted(
                f"dcgmi exit 205 (an ISOLATE error: drain the GPU) but {what}",
                GpuAction.REBOOT,
                "which error, and so NVIDIA's next step for it, is unknown: reboot and re-check",
            )
        return untrusted(f"exit {exit_code}: {what}" if exit_code else f"exit 0 but {what}: not calling a GPU healthy")
    if report.results and all(r.status == "skip" for r in report.results):
        return untrusted(f"no DCGM test ran (every result is Skip, exit {exit_code})")
    dcgm_failed = [f for f in gpus if f.failed_tests]
    reasons = list(notes)
    if exit_code in (DCGMI_TEST_FAILED_EXIT, DCGMI_ISOLATE_EXIT) and not dcgm_failed:
        return untrusted(f"dcgmi exit {exit_code} says a test failed, but its JSON reports no error or failure")
    if exit_code not in (DCGMI_PASS_EXIT, DCGMI_TEST_FAILED_EXIT, DCGMI_ISOLATE_EXIT):
        if not dcgm_failed:
            return untrusted(f"exit {exit_code} is not a dcgmi result code and DCGM reports no failed test")
        reasons.append(f"exit {exit_code} is not a dcgmi result code; acting on the errors DCGM reports")
    if exit_code == DCGMI_ISOLATE_EXIT:
        reasons.append("dcgmi exit 205: an error of ISOLATE severity (drain the GPU); NVIDIA's next step for "
                       "each error decides reset, reboot or replace")  # fmt: skip
    reasons += _gpu_reasons(gpus) + _usage_notes(gpus, task_gpu_ids)
    if node_action in (GpuAction.IGNORE, GpuAction.RESTART_APP):
        summary = _healthy_summary(node_action, gpus, bool(dcgm_failed), bool(report.results))
        return Verdict(status=VerdictStatus.HEALTHY, action=_TO_REPAIR[node_action], reasons=[summary, *reasons],
                       **common)  # fmt: skip
    return Verdict(status=VerdictStatus.UNHEALTHY, action=_TO_REPAIR[node_action], reasons=reasons, **common)


def _healthy_summary(node_action: GpuAction, gpus: Sequence[GpuFinding], dcgm_failed: bool, has_results: bool) -> str:
    """The first reason of a HEALTHY verdict."""
    warned = any(f.dcgm for f in gpus)
    summary = "all DCGM tests passed" + (" (with warnings)" if warned and not dcgm_failed else "")
    if dcgm_failed:
        summary = "DCGM's errors need no repair"
    if not has_results:  # dcgmi exits DCGM_ST_NO_DATA (-14) when no test ran, so exit 0 is its pass
        summary = "dcgmi exit 0 and no per-GPU result in its JSON: trusting dcgmi's pass"
    if node_action == GpuAction.RESTART_APP:
        summary += ": the GPUs are fine, the application should be restarted"
    return summary


def _inferred_exit(report: DiagReport) -> int:
    """The exit code dcgmi gives what it printed (Diag.cpp GetFailureResult): 205 for an ISOLATE error on a GPU
    (or on no entity), 226 for another such error, else 0. A "Fail" without an error is a warning or a test
    that did not run, which dcgmi prints as Fail too."""
    errors = [e for r in report.results if r.status != "skip" and r.entity in (GPU_ENTITY, "") for e in r.errors]
    severities = [dcgm_severity(_int(e.get("error_id")), report.version, _int(e.get("error_severity"))) for e in errors]
    if Severity.ISOLATE in severities:
        return DCGMI_ISOLATE_EXIT
    return DCGMI_TEST_FAILED_EXIT if errors else DCGMI_PASS_EXIT


def instant(value: Any) -> datetime | None:
    """An ECS time as the .sync result or an event carries it (epoch seconds or milliseconds, or ISO-8601)."""
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    if isinstance(value, str) and value:
        try:
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return None


def verdict_from_check(
    check: Mapping[str, Any],
    log_text: str | None,
    container_name: str,
    task_gpu_ids: Sequence[str] | None = None,
    *,
    since: datetime | None = None,
    after_reset: bool = False,
) -> Verdict:
    """The verdict on a check task; XIDs before ``since`` (the failed task's start) do not count. After a
    successful GPU reset, neither do XIDs logged before this check started: they are from before the reset."""
    task = check_task(check)
    if task is None:
        error = check.get("Error", "unknown error")
        return Verdict(
            status=VerdictStatus.INCONCLUSIVE,
            action=RepairAction.NONE,
            reasons=[f"the DCGM check did not run to completion: {error}: {str(check.get('Cause', ''))[:300]}"],
        )
    task_arn = task.get("TaskArn")
    exit_code = container_exit_code(task, container_name)
    if exit_code is None:
        stop = task.get("StoppedReason") or task.get("StopCode") or "no exit code"
        return Verdict(
            status=VerdictStatus.INCONCLUSIVE,
            action=RepairAction.NONE,
            reasons=[f"the DCGM check stopped without an exit code: {stop}"],
            check_task_arn=task_arn,
        )
    started = instant(task.get("StartedAt") or task.get("CreatedAt")) if after_reset else None
    verdict = diagnose(exit_code, log_text, task_gpu_ids, since=max(filter(None, (since, started)), default=None))
    verdict.check_task_arn = task_arn
    return verdict


def gpu_summary(verdict: Verdict) -> str:
    """One line per node for notifications and history: which GPU, what failed, which action."""
    parts = []
    for f in verdict.gpus:
        if f.action == GpuAction.IGNORE:
            continue
        what = [f"{t} failed" for t in dict.fromkeys(f.failed_tests)] + [f"XID {x['xid']}" for x in f.xids]
        unused = " (not used by the failed task)" if f.used_by_failed_task is False else ""
        parts.append(f"{_label(f)}{unused}: {', '.join(dict.fromkeys(what))} -> {f.action}")
    return "; ".join(parts)


def reset_targets(verdict: Verdict) -> list[int]:
    """GPU indexes a reset must cover: every GPU whose finding calls for RESET_GPU (none unknown)."""
    return sorted(f.index for f in verdict.gpus if f.action == GpuAction.RESET_GPU and f.index is not None)


def _flat_findings(gpus: Sequence[GpuFinding]) -> list[dict[str, Any]]:
    findings = [
        {"gpu": f.index, "test": test, "messages": [d["message"] for d in f.dcgm if d["test"] == test]}
        for f in gpus
        for test in dict.fromkeys(f.failed_tests)
    ]
    findings += [{"gpu": f.index, "xid": x["xid"], "messages": [x["line"]]} for f in gpus for x in f.xids]
    return findings
