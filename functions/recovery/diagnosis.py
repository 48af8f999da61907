"""Turn a finished DCGM check into a verdict. Pure: the caller fetches the log text.

The check's contract (exit code of the check container): 0 healthy, 205 (dcgmi "isolate") the GPU must be
replaced, any other code unhealthy; a check that was killed (dcgmi 203, or 128+N for signal N), timed out,
could not be placed or whose exit code cannot be read is INCONCLUSIVE. Never HEALTHY on output that cannot
be read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from recovery.models import RepairAction, Verdict, VerdictStatus

# The check wrapper prints its result on one line with this marker, among whatever else the container logs.
RESULT_MARKER = "GPU_RECOVERY_RESULT "
DCGMI_ISOLATE_EXIT = 205
DCGMI_KILLED_EXIT = 203
SIGNAL_EXIT_BASE = 128
MAX_SIGNAL = 64


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


def parse_result(log_text: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """The wrapper's result envelope from the log, or the raw `dcgmi diag -j` JSON wrapped like one.
    Returns (result, problem); problem says why nothing readable was found."""
    if not log_text:
        return None, "no DCGM output in the check's log stream"
    for line in log_text.splitlines():
        if line.startswith(RESULT_MARKER):
            try:
                envelope = json.loads(line[len(RESULT_MARKER) :])
            except json.JSONDecodeError as error:
                return None, f"DCGM result line is not valid JSON ({error.msg})"
            return (envelope, None) if isinstance(envelope, dict) else (None, "DCGM result is not an object")
    start, end = log_text.find("{"), log_text.rfind("}")
    if start < 0 or end <= start:
        return None, "no DCGM result in the check's log stream"
    try:
        raw = json.loads(log_text[start : end + 1])
    except json.JSONDecodeError as error:
        return None, f"DCGM output is not valid JSON ({error.msg}): truncated?"
    return {"dcgmi": raw, "xids": [], "gpus": []}, None


def failed_tests(dcgmi: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Failed results per GPU from dcgmi JSON (DCGM 4.x "DCGM Diagnostic" and 3.x "DCGM GPU Diagnostic")."""
    report = dcgmi.get("DCGM Diagnostic") or dcgmi.get("DCGM GPU Diagnostic") or {}
    findings = []
    for category in report.get("test_categories", []):
        for test in category.get("tests", []):
            for result in test.get("results", []):
                if str(result.get("status", "")).lower() == "fail":
                    gpu = result.get("entity_id", result.get("gpu_id"))
                    messages = [w.get("warning", "") for w in result.get("warnings", []) if isinstance(w, dict)]
                    findings.append({"gpu": gpu, "test": test.get("name"), "messages": messages})
    return findings


def verdict_from_check(check: Mapping[str, Any], log_text: str | None, container_name: str) -> Verdict:
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
    result, problem = parse_result(log_text)
    findings = _findings(result)
    common: dict[str, Any] = {"exit_code": exit_code, "check_task_arn": task_arn, "findings": findings}
    if exit_code == DCGMI_KILLED_EXIT or SIGNAL_EXIT_BASE < exit_code <= SIGNAL_EXIT_BASE + MAX_SIGNAL:
        reason = f"the DCGM check was killed (exit {exit_code}): it says nothing about the GPUs"
        return Verdict(status=VerdictStatus.INCONCLUSIVE, action=RepairAction.NONE, reasons=[reason], **common)
    if exit_code == 0:
        if result is None:
            return Verdict(
                status=VerdictStatus.INCONCLUSIVE,
                action=RepairAction.NONE,
                reasons=[f"exit 0 but {problem}: not calling a GPU healthy on output it cannot read"],
                **common,
            )
        # Kernel XIDs alone (XID 13 is an application fault) do not overrule passing DCGM tests.
        if any("test" in finding for finding in findings):
            return Verdict(
                status=VerdictStatus.UNHEALTHY,
                action=RepairAction.REBOOT,
                reasons=["exit 0 but DCGM reports failed tests"],
                **common,
            )
        return Verdict(
            status=VerdictStatus.HEALTHY, action=RepairAction.NONE, reasons=["all DCGM tests passed"], **common
        )
    if exit_code == DCGMI_ISOLATE_EXIT:
        reason = f"dcgmi exit {DCGMI_ISOLATE_EXIT}: isolate severity, the GPU must be replaced"
        return Verdict(status=VerdictStatus.UNHEALTHY, action=RepairAction.REPLACE, reasons=[reason], **common)
    reasons = [f"DCGM check failed with exit {exit_code}"] + ([problem] if problem else [])
    return Verdict(status=VerdictStatus.UNHEALTHY, action=RepairAction.REBOOT, reasons=reasons, **common)


def _findings(result: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    if not result:
        return []
    dcgmi = result.get("dcgmi")
    findings = failed_tests(dcgmi) if isinstance(dcgmi, dict) else []
    findings += [
        {"gpu": x.get("gpuIndex"), "xid": x.get("xid"), "messages": [x.get("line", "")]} for x in result.get("xids", [])
    ]
    return findings
