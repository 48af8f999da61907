"""Recovery executions as an operator reads them: what each step decided and did (from the visits the history
reader gives, gpu_recovery/history.py), and a one-line summary per execution."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from gpu_recovery.history import Visit, parse_json

FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
# Steps that change something outside the workflow's own tables, with what an operator calls them (every
# ECS/EC2/SSM/SNS and RecordNodeState step of the definition is here or named as not acting in tests/unit/test_asl.py).
ACTION_STATES = {
    "StopJobTask": "stop",
    "DrainNode": "drain node",
    "RecordReboot": "count reboot",
    "RefundReboot": "give the reboot back (not performed)",
    "RebootInstance": "reboot instance",
    "ReactivateNode": "reactivate node",
    "DrainNodeForGpuReset": "drain node (GPU reset)",
    "RecordGpuReset": "record GPU reset",
    "ResetGpu": "reset GPU",
    "ReactivateNodeAfterGpuReset": "reactivate node (after GPU reset)",
    "DrainNodeForQuarantine": "drain node (quarantine)",
    "QuarantineNode": "quarantine node",
    "TerminateInstance": "terminate instance",
    "ReleaseNode": "release node",
    "MarkNodeSuspect": "mark node suspect",
    "DrainSuspectNode": "drain node (suspect)",
    "HoldNode": "hold node (fleet breaker)",
    "DrainHeldNode": "drain node (held)",
    "RecordDryRun": "record dry run",
    "RestartJob": "decide / restart job",
    "NotifyRecoveryResult": "notify",
    "NotifyRecoveryError": "notify error",
    "NotifyLastResort": "notify (last resort)",
}
# Step Functions execution names: 1-80 characters of A-Z a-z 0-9 - _.
NAME_LIMIT = 80
_NAME_FORBIDDEN = re.compile(r"[^A-Za-z0-9_-]")


def execution_name(*parts: str) -> str:
    return _NAME_FORBIDDEN.sub("-", "-".join(p for p in parts if p))[:NAME_LIMIT]


# ---- what the steps decided ----------------------------------------------------------------------
def verdicts(visits: Iterable[Visit]) -> list[dict[str, Any]]:
    """Every AnalyzeDiag result: node, check phase, verdict, next step, reason, findings."""
    found = []
    for visit in visits:
        output = visit.output if isinstance(visit.output, dict) else {}
        analysis = output.get("analysis")
        if visit.name != "AnalyzeDiag" or not isinstance(analysis, dict):
            continue
        verdict = analysis.get("verdict") or {}
        found.append(
            {
                "node": visit.target(),
                "at": visit.exited,
                "phase": (output.get("checkPlan") or {}).get("phase", "INITIAL"),
                "status": verdict.get("status"),
                "action": verdict.get("action"),
                "exitCode": verdict.get("exitCode"),
                "reasons": verdict.get("reasons", []),
                "findings": verdict.get("findings", []),
                "next": analysis.get("next"),
                "reason": analysis.get("reason"),
            }
        )
    return found


def actions(visits: Iterable[Visit]) -> list[dict[str, Any]]:
    """Steps that acted on tasks, nodes or people, in order, with their target and what they returned."""
    taken = []
    for visit in visits:
        if visit.name not in ACTION_STATES:
            continue
        detail = ""
        output = visit.output if isinstance(visit.output, dict) else {}
        if visit.name == "RestartJob" and isinstance(output.get("outcome"), dict):
            outcome = output["outcome"]
            restarted = outcome.get("restarted")
            detail = f"{outcome.get('outcome')}: {outcome.get('reason', '')}" + (
                f" (started {restarted} task(s))" if restarted else ""
            )
        elif isinstance(output.get("result"), dict):
            detail = f"{output['result'].get('outcome')}: {output['result'].get('reason', '')}"
        taken.append(
            {
                "at": visit.entered,
                "state": visit.name,
                "action": ACTION_STATES[visit.name],
                "target": visit.target(),
                "done": visit.exited is not None,
                "detail": detail,
            }
        )
    return taken


# ---- one line per execution ----------------------------------------------------------------------
def task_arn_of(document: Any) -> str | None:
    if not isinstance(document, dict):
        return None
    detail = document.get("detail")
    arn = detail.get("taskArn") if isinstance(detail, dict) else document.get("taskArn")
    return str(arn) if arn else None


def summarize(description: dict[str, Any], task_row: dict[str, Any] | None = None) -> dict[str, Any]:
    """Start, status, job, node(s), outcome and duration of one execution, from DescribeExecution (its
    input and, once it succeeded, its output: the workflow's final state) and the failed task's ecs_task row."""
    request = parse_json(description.get("input"))
    output = parse_json(description.get("output"))
    output = output if isinstance(output, dict) else {}
    task_row = task_row or {}
    job: dict[str, Any] = output["job"] if isinstance(output.get("job"), dict) else {}
    results = {r.get("nodeId"): r.get("outcome") for r in output.get("nodeResults") or [] if isinstance(r, dict)}
    nodes = [str(n.get("ec2InstanceId")) for n in job.get("nodes", []) if isinstance(n, dict)]
    if not nodes and task_row.get("ec2InstanceId"):
        nodes = [str(task_row["ec2InstanceId"])]
    status = str(description.get("status"))
    decision = output.get("decision")
    outcome_doc = output.get("outcome") if isinstance(output.get("outcome"), dict) else None
    if decision in ("IGNORE", "DUPLICATE"):
        outcome = f"{decision}: {output.get('reason', '')}"
    elif outcome_doc:
        outcome = str(outcome_doc.get("outcome")) + (" (dry run)" if outcome_doc.get("dryRun") else "")
    elif isinstance(output.get("jobLock"), dict):
        holder = ((output["jobLock"].get("Item") or {}).get("lockOwner") or {}).get("S")
        outcome = f"JOINED {str(holder).rsplit(':', 1)[-1]}" if holder else "JOINED"
    elif status == "FAILED":
        outcome = f"ERROR: {description.get('error', 'failed')}"
    else:
        outcome = "-" if status == "RUNNING" else status
    start = description.get("startDate")
    stop = description.get("stopDate")
    end = stop or (datetime.now(UTC) if status == "RUNNING" else None)
    return {
        "executionArn": description.get("executionArn"),
        "name": description.get("name"),
        "startDate": start,
        "stopDate": stop,
        "status": status,
        "taskArn": task_arn_of(request),
        "job": job.get("jobId") or task_row.get("jobId"),
        "nodes": nodes,
        "nodeOutcomes": results,
        "outcome": outcome,
        "ignored": decision in ("IGNORE", "DUPLICATE"),
        "reason": (outcome_doc or {}).get("reason") or description.get("cause"),
        "durationSeconds": (end - start).total_seconds() if start and end else None,
    }
