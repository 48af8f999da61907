"""Turn a finished DCGM check into a verdict. Pure: the caller fetches the log text.

Inputs: the check container's exit code (dcgmi's: the wrapper exits with it), and its output: the wrapper's
``GPU_RECOVERY_RESULT {json}`` envelope line (dcgmi JSON + kernel XID lines + the GPU map), raw ``dcgmi diag -j``
JSON, or a log containing either. dcgmi JSON of DCGM 4.x (``"DCGM Diagnostic"``, results by ``entity_id``) and
3.x (``"DCGM GPU Diagnostic"``, results by ``gpu_id``/``gpu_ids``) are read.

Exit codes (dcgmi's): 0 pass; 226 a test failed (DCGM_ST_NVVS_ERROR); 205 a failure of ISOLATE severity
(DCGM_ST_NVVS_ISOLATE_ERROR): replace the GPU; 203 killed; 128+N killed by signal N. Killed, unreadable,
truncated, of an unknown version, a runtime error, or no test run: INCONCLUSIVE with the reason, never HEALTHY.

Each GPU gets the most severe action its XIDs (xid_catalog.XID_CATALOG) and DCGM errors (by severity) call for;
the node gets the most severe across its GPUs. The failed task's gpuIds mark which GPUs it used; a fault on a
GPU it did not use still counts, and the reasons say so.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from recovery.models import GpuFinding, RepairAction, Verdict, VerdictStatus
from recovery.xid_catalog import XID_CATALOG, GpuAction, most_severe, severity_action, xid_action

# The check wrapper prints its result on one line with this marker, among whatever else the container logs.
RESULT_MARKER = "GPU_RECOVERY_RESULT "
ENVELOPE_VERSIONS = frozenset({1})
DCGM_MAJOR_VERSIONS = frozenset({3, 4})
DCGMI_PASS_EXIT = 0
DCGMI_TEST_FAILED_EXIT = 226
DCGMI_ISOLATE_EXIT = 205
DCGMI_KILLED_EXIT = 203
SIGNAL_EXIT_BASE = 128
MAX_SIGNAL = 64
ISOLATE_SEVERITY = 2  # dcgmErrorSeverity_t DCGM_ERROR_ISOLATE
REPORT_KEYS = {"DCGM Diagnostic": "4.x", "DCGM GPU Diagnostic": "3.x"}
# NVRM: Xid (PCI:0000:10:1c): 79, pid=..., name=..., text
XID_LINE = re.compile(r"NVRM: Xid \((?:PCI:)?([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2})[^)]*\): (\d+)")

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
    """The wrapper's result envelope from the log, or the raw `dcgmi diag -j` JSON wrapped like one.
    Returns (result, problem); problem says why nothing readable was found. XID lines anywhere in the text
    are collected when the envelope carries none (a pasted kernel log)."""
    if not log_text:
        return None, "no DCGM output in the check's log stream"
    result, problem = _envelope_or_raw(log_text)
    if result is not None and not result.get("xids"):
        result["xids"] = xids_from_text(log_text, result.get("gpus") or [])
    return result, problem


def _envelope_or_raw(log_text: str) -> tuple[dict[str, Any] | None, str | None]:
    for line in log_text.splitlines():
        at = line.find(RESULT_MARKER.strip())
        if at < 0 or not line[at + len(RESULT_MARKER.strip()) :].lstrip().startswith("{"):
            continue
        body = line[at + len(RESULT_MARKER.strip()) :].strip()
        try:
            envelope = json.loads(body)
        except json.JSONDecodeError as error:
            return None, f"DCGM result line is not valid JSON ({error.msg}): truncated?"
        if not isinstance(envelope, dict):
            return None, "DCGM result is not an object"
        version = envelope.get("version")
        if version is not None and version not in ENVELOPE_VERSIONS:
            return (
                None,
                f"unknown result envelope version {version!r} (this analyzer reads {sorted(ENVELOPE_VERSIONS)})",
            )
        return envelope, None
    start, end = log_text.find("{"), log_text.rfind("}")
    if start < 0 or end <= start:
        return None, "no DCGM result in the check's log stream"
    try:
        raw = json.loads(log_text[start : end + 1])
    except json.JSONDecodeError as error:
        return None, f"DCGM output is not valid JSON ({error.msg}): truncated?"
    if isinstance(raw, dict) and "dcgmi" in raw:  # an envelope pasted without its marker
        return raw, None
    return {"dcgmi": raw, "xids": [], "gpus": []}, None


def _pci_key(pci: str) -> str:
    """'00000000:10:1C.0' and 'PCI:0000:10:1c' -> '10:1c' (bus:device; the domain is 0 on these hosts)."""
    parts = pci.removeprefix("PCI:").split(".")[0].split(":")
    return ":".join(parts[-2:]).lower()


def xids_from_text(text: str, gpus: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    by_pci = {_pci_key(str(g.get("pciBusId", ""))): g.get("index") for g in gpus if g.get("pciBusId")}
    found = []
    for line in text.splitlines():
        match = XID_LINE.search(line)
        if match:
            pci = match.group(1)
            found.append(
                {
                    "xid": int(match.group(2)),
                    "gpuIndex": by_pci.get(_pci_key(pci)),
                    "pciBusId": pci,
                    "line": line.strip(),
                }
            )
    return found


@dataclass
class DcgmResult:
    gpu: int | None
    test: str
    status: str  # pass / fail / skip / warn
    warnings: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class DiagReport:
    version: str  # "4.x" / "3.x" layout, or the reported DCGM version
    results: list[DcgmResult]
    runtime_error: str | None = None


def read_report(dcgmi: Any) -> tuple[DiagReport | None, str | None]:
    """The per-GPU results of a dcgmi JSON document, or why it cannot be read."""
    if not isinstance(dcgmi, dict):
        return None, "the dcgmi output is not a JSON object"
    runtime_error = dcgmi.get("runtime_error")
    key = next((k for k in REPORT_KEYS if k in dcgmi), None)
    reported = str(dcgmi.get("version") or (dcgmi.get("metadata") or {}).get("DCGM Version") or "")
    major = reported.split(".", maxsplit=1)[0]
    if reported and (not major.isdigit() or int(major) not in DCGM_MAJOR_VERSIONS):
        return None, f"unknown DCGM version {reported!r} (this analyzer reads DCGM 3.x and 4.x)"
    if key is None:
        if runtime_error:
            return DiagReport(reported or "unknown", [], str(runtime_error)), None
        return None, "not a dcgmi diag document (neither 'DCGM Diagnostic' nor 'DCGM GPU Diagnostic')"
    report = dcgmi[key] if isinstance(dcgmi[key], dict) else {}
    runtime_error = runtime_error or report.get("runtime_error")
    results = []
    for category in report.get("test_categories") or []:
        for test in category.get("tests") or []:
            for result in test.get("results") or []:
                status = str(result.get("status", "")).lower()
                warnings = [w for w in result.get("warnings") or [] if isinstance(w, dict)]
                for gpu in _entity_ids(result):
                    results.append(DcgmResult(gpu, str(test.get("name", "?")), status, warnings))
    return DiagReport(reported or REPORT_KEYS[key], results, str(runtime_error) if runtime_error else None), None


def _entity_ids(result: Mapping[str, Any]) -> list[int | None]:
    for key in ("entity_id", "gpu_id", "gpu_ids"):
        value = result.get(key)
        if value is None or value == "":
            continue
        if isinstance(value, list):
            return [int(v) for v in value]
        return [int(v) for v in str(value).split(",") if v.strip().isdigit()] or [None]
    return [None]


def failed_tests(dcgmi: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Failed results per GPU from dcgmi JSON (DCGM 4.x "DCGM Diagnostic" and 3.x "DCGM GPU Diagnostic")."""
    report, _ = read_report(dcgmi)
    return [
        {"gpu": r.gpu, "test": r.test, "messages": [w.get("warning", "") for w in r.warnings]}
        for r in (report.results if report else [])
        if r.status == "fail"
    ]


# ---------------------------------------------------------------------------------------- per-GPU findings
def gpu_findings(
    report: DiagReport | None,
    xids: Iterable[Mapping[str, Any]],
    gpus: Sequence[Mapping[str, Any]],
    task_gpu_ids: Sequence[str] | None,
) -> list[GpuFinding]:
    """One finding per GPU that has something to say (a failed or warned test, an XID), in GPU order."""
    inventory = {g.get("index"): g for g in gpus}
    findings: dict[int | None, GpuFinding] = {}
    actions: dict[int | None, list[GpuAction]] = {}

    def finding(index: int | None) -> GpuFinding:
        if index not in findings:
            gpu = inventory.get(index, {})
            used = None
            if task_gpu_ids is not None and gpu.get("uuid"):
                used = gpu["uuid"] in task_gpu_ids
            findings[index] = GpuFinding(index=index, uuid=gpu.get("uuid"), pci_bus_id=gpu.get("pciBusId"),
                                         used_by_failed_task=used)  # fmt: skip
            actions[index] = []
        return findings[index]

    for result in report.results if report else []:
        if result.status in ("pass", "skip") and not result.warnings:
            continue
        if result.status == "skip":
            continue
        f = finding(result.gpu)
        if result.status == "fail":
            f.failed_tests.append(result.test)
        for warning in result.warnings or [{}]:
            severity = warning.get("error_severity")
            f.dcgm.append(
                {"test": result.test, "status": result.status, "errorId": warning.get("error_id"),
                 "category": warning.get("error_category"), "severity": severity,
                 "message": str(warning.get("warning", ""))}
            )  # fmt: skip
            if result.status == "fail":
                action, why = severity_action(int(severity) if severity is not None else None)
            else:  # a warning on a passing (or "warn") result: DCGM says watch, not act
                action, why = GpuAction.IGNORE, "DCGM warning on a passing test: no action"
            actions[result.gpu].append(action)
            f.why.append(f"{result.test}: {why}")

    counts = Counter((x.get("gpuIndex"), int(x["xid"])) for x in xids if x.get("xid") is not None)
    for x in xids:
        if x.get("xid") is None:
            continue
        index, code = x.get("gpuIndex"), int(x["xid"])
        f = finding(index)
        action, why = xid_action(code, counts[(index, code)])
        entry = XID_CATALOG.get(code)
        f.xids.append(
            {"xid": code, "name": entry.name if entry else "unknown XID",
             "catalogAction": entry.catalog_action if entry else None, "action": action.value,
             "line": str(x.get("line", ""))}
        )  # fmt: skip
        actions[index].append(action)
        if why not in f.why:
            f.why.append(why)

    for index, f in findings.items():
        f.action = most_severe(actions[index]).value
    return [findings[i] for i in sorted(findings, key=lambda i: (i is None, i or 0))]


def _label(f: GpuFinding) -> str:
    return f"GPU {f.index}" if f.index is not None else "an unidentified GPU"


def _usage_notes(gpus: Sequence[GpuFinding], task_gpu_ids: Sequence[str] | None) -> list[str]:
    if task_gpu_ids is None:
        return []
    notes = []
    for f in gpus:
        if f.used_by_failed_task is False and f.action not in (GpuAction.IGNORE, GpuAction.RESTART_APP):
            notes.append(f"{_label(f)} was not used by the failed task; its fault still counts")
    return notes


# ---------------------------------------------------------------------------------------- the verdict
def diagnose(exit_code: int | None, log_text: str | None, task_gpu_ids: Sequence[str] | None = None) -> Verdict:
    """The verdict on one check's exit code and output. The exit code may come from the envelope
    (``dcgmiExitCode``) when the caller has none (a pasted log)."""
    result, problem = parse_result(log_text)
    if exit_code is None and result is not None and isinstance(result.get("dcgmiExitCode"), int):
        exit_code = int(result["dcgmiExitCode"])
    report, report_problem = read_report(result.get("dcgmi")) if result else (None, problem)
    gpus_map = (result or {}).get("gpus") or []
    gpus = gpu_findings(report, (result or {}).get("xids") or [], gpus_map, task_gpu_ids)
    common: dict[str, Any] = {
        "exit_code": exit_code,
        "gpus": gpus,
        "findings": _flat_findings(result),
        "dcgm_version": report.version if report else None,
    }

    def inconclusive(reason: str) -> Verdict:
        noted = [f"{_label(f)}: {', '.join(f.why)}" for f in gpus if f.xids]
        return Verdict(status=VerdictStatus.INCONCLUSIVE, action=RepairAction.NONE, reasons=[reason, *noted], **common)

    inferred: list[str] = []
    if exit_code is None:
        if report is None or report.runtime_error:
            return inconclusive(f"no exit code and {report_problem or problem or 'no readable DCGM result'}")
        exit_code = _inferred_exit(report)
        common["exit_code"] = exit_code
        inferred = [f"no exit code given: judged on the dcgmi JSON alone (as if dcgmi exited {exit_code})"]
    if exit_code == DCGMI_KILLED_EXIT or SIGNAL_EXIT_BASE < exit_code <= SIGNAL_EXIT_BASE + MAX_SIGNAL:
        how = "dcgmi was killed" if exit_code == DCGMI_KILLED_EXIT else f"signal {exit_code - SIGNAL_EXIT_BASE}"
        return inconclusive(f"the DCGM check was killed (exit {exit_code}, {how}): it says nothing about the GPUs")
    if exit_code == DCGMI_ISOLATE_EXIT:
        isolate = [f"dcgmi exit {DCGMI_ISOLATE_EXIT}: a failure of ISOLATE severity, the GPU must be replaced"]
        isolate += [f"{_label(f)}: {'; '.join(f.why)}" for f in gpus if f.action == GpuAction.REPLACE]
        isolate += _usage_notes(gpus, task_gpu_ids)
        return Verdict(status=VerdictStatus.UNHEALTHY, action=RepairAction.REPLACE, reasons=isolate, **common)
    if report is None:
        what = report_problem or problem or "no DCGM output"
        if exit_code == DCGMI_PASS_EXIT:
            return inconclusive(f"exit 0 but {what}: not calling a GPU healthy on output it cannot read")
        return inconclusive(f"DCGM check exit {exit_code} but {what}: which GPU failed, and how, is unknown")
    if report.runtime_error:
        return inconclusive(f"dcgmi could not run the diagnostic (exit {exit_code}): {report.runtime_error}")
    if report.results and all(r.status == "skip" for r in report.results):
        return inconclusive(f"no DCGM test ran (every result is Skip, exit {exit_code})")

    failed = [f for f in gpus if f.failed_tests]
    reasons: list[str] = list(inferred)
    if exit_code == DCGMI_TEST_FAILED_EXIT and not failed:
        return inconclusive("dcgmi exit 226 says a test failed, but its JSON reports no failed result")
    if exit_code not in (DCGMI_PASS_EXIT, DCGMI_TEST_FAILED_EXIT):
        if not failed:
            return inconclusive(f"exit {exit_code} is not a dcgmi result code and DCGM reports no failed test")
        reasons.append(f"exit {exit_code} is not a dcgmi result code; acting on the failed tests DCGM reports")
    if exit_code == DCGMI_PASS_EXIT and failed:
        reasons.append("exit 0 but DCGM reports failed tests")
    for f in gpus:
        if f.action == GpuAction.REPLACE and f.failed_tests and not _xid_replace(f):
            # ISOLATE severity is dcgmi's own judgement only together with exit 205; inconsistent output gets the
            # reversible repair, and a fault that survives the reboot is quarantined anyway.
            f.action = GpuAction.REBOOT.value
            f.why.append(f"ISOLATE severity without dcgmi exit {DCGMI_ISOLATE_EXIT}: reboot and re-check first")
    node_action = most_severe([GpuAction(f.action) for f in gpus])
    for f in gpus:
        if f.action != GpuAction.IGNORE:
            reasons.append(f"{_label(f)} -> {f.action}: {'; '.join(f.why)}")
    reasons += _usage_notes(gpus, task_gpu_ids)
    if node_action in (GpuAction.IGNORE, GpuAction.RESTART_APP):
        summary = "all DCGM tests passed" if not failed else "DCGM findings need no repair"
        if not report.results:
            summary = "dcgmi exit 0 and no per-GPU result in its JSON: trusting dcgmi's pass"
        if node_action == GpuAction.RESTART_APP:
            summary += ": the GPUs are fine, the application should be restarted"
        return Verdict(status=VerdictStatus.HEALTHY, action=_TO_REPAIR[node_action], reasons=[summary, *reasons],
                       **common)  # fmt: skip
    return Verdict(status=VerdictStatus.UNHEALTHY, action=_TO_REPAIR[node_action], reasons=reasons, **common)


def _inferred_exit(report: DiagReport) -> int:
    """The exit code dcgmi gives the results it printed: 205 for an ISOLATE failure, 226 for another failure."""
    failures = [w for r in report.results if r.status == "fail" for w in (r.warnings or [{}])]
    if any(w.get("error_severity") == ISOLATE_SEVERITY for w in failures):
        return DCGMI_ISOLATE_EXIT
    return DCGMI_TEST_FAILED_EXIT if failures else DCGMI_PASS_EXIT


def _xid_replace(f: GpuFinding) -> bool:
    return any(x["action"] == GpuAction.REPLACE for x in f.xids)


def verdict_from_check(
    check: Mapping[str, Any], log_text: str | None, container_name: str, task_gpu_ids: Sequence[str] | None = None
) -> Verdict:
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
    verdict = diagnose(exit_code, log_text, task_gpu_ids)
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


def _flat_findings(result: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not result:
        return []
    dcgmi = result.get("dcgmi")
    findings = failed_tests(dcgmi) if isinstance(dcgmi, dict) else []
    findings += [
        {"gpu": x.get("gpuIndex"), "xid": x.get("xid"), "messages": [x.get("line", "")]}
        for x in result.get("xids") or []
    ]
    return findings
