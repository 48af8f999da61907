"""Reading recovery executions back from Step Functions: their history as a path of states (with Map
iterations told apart), what each step decided, and a one-line summary per execution."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

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

Scope = tuple[tuple[str, int], ...]  # (Map state name, iteration index), outermost first


def execution_name(*parts: str) -> str:
    return _NAME_FORBIDDEN.sub("-", "-".join(p for p in parts if p))[:NAME_LIMIT]


def parse_json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _history_pages(sfn: Any, execution_arn: str, page_size: int, **kwargs: Any) -> Any:
    # GetExecutionHistory returns at most 1000 events a page (maxResults; Step Functions API reference).
    paginator = sfn.get_paginator("get_execution_history")
    return paginator.paginate(executionArn=execution_arn, PaginationConfig={"PageSize": page_size}, **kwargs)


def _in_order(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(events, key=lambda e: int(e["id"]))


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event of the execution, oldest first."""
    return _in_order(e for page in _history_pages(sfn, execution_arn, 1000) for e in page["events"])


def new_events(sfn: Any, execution_arn: str, after: int) -> list[dict[str, Any]]:
    """Events with an id above ``after``, oldest first, reading newest-first pages only until known ones."""
    events: list[dict[str, Any]] = []
    for page in _history_pages(sfn, execution_arn, 200, reverseOrder=True):
        fresh = [e for e in page["events"] if int(e["id"]) > after]
        events.extend(fresh)
        if len(fresh) < len(page["events"]):
            break
    return _in_order(events)


def details(event: dict[str, Any]) -> dict[str, Any]:
    return next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})


@dataclass
class Visit:
    """One entry into a state."""

    name: str
    kind: str  # Task, Choice, Map, Pass, Wait, Succeed, Fail
    scope: Scope
    entered: datetime
    exited: datetime | None = None
    input: Any = None
    output: Any = None

    @property
    def seconds(self) -> float | None:
        return (self.exited - self.entered).total_seconds() if self.exited else None

    def target(self) -> str | None:
        """The node or task a visit worked on, read from its input."""
        data = self.input if isinstance(self.input, dict) else {}
        node = data.get("node")
        if isinstance(node, dict) and node.get("ec2InstanceId"):
            return str(node["ec2InstanceId"])
        if data.get("taskArn") and self.scope:
            return "task " + str(data["taskArn"]).rsplit("/", 1)[-1]
        return None


@dataclass
class Failure:
    state: str | None
    scope: Scope
    at: datetime
    error: str
    cause: str
    caught: bool


@dataclass
class Walk:
    """An execution's history, read: the states visited in order and every error raised."""

    visits: list[Visit] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    started: datetime | None = None
    last_id: int = 0

    def labels(self) -> dict[Scope, str]:
        """A readable name per Map iteration: the node (or task) its first state worked on."""
        names: dict[Scope, str] = {}
        for visit in self.visits:
            if visit.scope and visit.scope not in names:
                target = visit.target()
                names[visit.scope] = target or f"{visit.scope[-1][0]} #{visit.scope[-1][1]}"
        return names


def walk(events: Sequence[dict[str, Any]]) -> Walk:
    """Pair each *StateEntered with its *StateExited (same name, same Map iteration); collect errors.
    An event's Map iteration follows from `previousEventId`: an iteration's events chain back to its
    MapIterationStarted, and the event after an iteration's end points back to that end."""
    result = Walk()
    by_id = {int(e["id"]): e for e in events}
    scopes: dict[int, Scope] = {}
    entered_by: dict[int, str | None] = {}  # event id -> the state it happened in
    open_visits: dict[tuple[str, Scope], list[Visit]] = {}
    for event_id in sorted(by_id):
        event = by_id[event_id]
        kind = str(event["type"])
        previous = by_id.get(int(event.get("previousEventId") or 0))
        scope: Scope = scopes.get(int(previous["id"]), ()) if previous else ()
        state = entered_by.get(int(previous["id"])) if previous else None
        if previous and previous["type"] == "MapIterationStarted":
            info = previous.get("mapIterationStartedEventDetails", {})
            scope = (*scope, (str(info.get("name", "")), int(info.get("index", 0))))
        elif previous and previous["type"] in ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted"):
            scope = scope[:-1]
        scopes[event_id] = scope
        info = details(event)
        timestamp = event["timestamp"]
        if kind == "ExecutionStarted":
            result.started = timestamp
        if kind.endswith("StateEntered"):
            state = str(info.get("name"))
            visit = Visit(
                state, kind.removesuffix("StateEntered"), scope, timestamp, input=parse_json(info.get("input"))
            )
            result.visits.append(visit)
            open_visits.setdefault((state, scope), []).append(visit)
        elif kind.endswith("StateExited"):
            pending = open_visits.get((str(info.get("name")), scope))
            if pending:
                done = pending.pop()
                done.exited, done.output = timestamp, parse_json(info.get("output"))
            state = None
        elif "error" in info or (kind.startswith("Execution") and kind.endswith(("Failed", "TimedOut", "Aborted"))):
            result.failures.append(
                Failure(
                    state=state,
                    scope=scope,
                    at=timestamp,
                    error=str(info.get("error", kind)),
                    cause=str(info.get("cause", "")),
                    caught=not kind.startswith("Execution"),
                )
            )
        entered_by[event_id] = state
        result.last_id = max(result.last_id, event_id)
    if result.started is None and result.visits:
        result.started = result.visits[0].entered
    return result


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
