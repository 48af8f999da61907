"""Notifications: a subject someone can triage from a phone, a plain-text email, and a JSON document with
everything else for machines.

The topic is published with MessageStructure=json (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html):
the message is a JSON object whose `default` string goes to every protocol without its own key (SQS, Lambda,
HTTP, email-json) and whose `email` string is what email subscribers read."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

from recovery.models import ExecutionContext, JobOutcomeKind, NodeOutcome, NodeResult, Notification

SNS_SUBJECT_LIMIT = 100  # SNS rejects longer subjects
CAUSE_IN_JSON = 4000  # the JSON document keeps this much of a cause; the email has the extracted error
CAUSE_IN_TEXT = 500  # a cause that is no known error document, shown as text
PREFIX = "[GPU Recovery]"
# A notification names at most this many nodes and tasks and counts the rest: SNS takes at most 256 KB per message
# (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html, Message) and Step Functions at most 256 KB per
# state output (the developer guide's "Service quotas", payload size), whatever the job's size.
NODES_IN_SUBJECT = 3
NODES_LISTED = 20
TASKS_LISTED = 10
# The console's host per partition (the execution ARN says which); infra/stack.py uses the same table for its
# console URL output, and tests/infra/test_stack.py pins the two equal.
CONSOLE_HOSTS = {
    "aws": "console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}


def console_url(execution_arn: str) -> str:
    parts = execution_arn.split(":")
    region = parts[3] if len(parts) > 3 else os.environ.get("AWS_REGION", "")
    host = CONSOLE_HOSTS.get(parts[1] if len(parts) > 1 else "aws", CONSOLE_HOSTS["aws"])
    return f"https://{host}/states/home?region={region}#/v2/executions/details/{execution_arn}"


def _subject(text: str) -> str:
    ascii_text = text.encode("ascii", "replace").decode().replace("\n", " ")
    return ascii_text if len(ascii_text) <= SNS_SUBJECT_LIMIT else ascii_text[: SNS_SUBJECT_LIMIT - 3] + "..."


def listing(items: Sequence[str], limit: int) -> str:
    """At most ``limit`` items, comma-separated, then "and N more": a message stays small whatever the job's size."""
    shown = ", ".join(items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown


def outcome_counts(results: Sequence[NodeResult]) -> dict[str, int]:
    return dict(sorted(Counter(r.outcome.value for r in results).items()))


def node_summary(results: Sequence[NodeResult]) -> str:
    notable = [r for r in results if r.outcome != NodeOutcome.HEALTHY]
    if not notable:
        return f"{len(results)} node(s) healthy"
    return listing([f"{r.node_id} {r.outcome.value}" for r in notable], NODES_IN_SUBJECT)


def recovery_notification(
    job_id: str,
    outcome: JobOutcomeKind,
    reason: str,
    results: Sequence[NodeResult],
    execution: ExecutionContext,
    *,
    dry_run: bool,
    failed_task: str,
    new_tasks: Sequence[str],
) -> Notification:
    """Counts per outcome and the nodes that were not healthy (at most NODES_LISTED of them, the rest counted):
    never every node or every task, so a 128-node job's message is as small as a one-node job's. The per-node
    detail is in the node table and the execution history (`gpu-recovery show`)."""
    mode = "DRY RUN " if dry_run else ""
    subject = _subject(f"{PREFIX} {mode}{job_id} {outcome.value}: {node_summary(results)}")
    notable = [r for r in results if r.outcome != NodeOutcome.HEALTHY]
    listed = notable[:NODES_LISTED]
    document: dict[str, Any] = {
        "jobId": job_id,
        "outcome": outcome.value,
        "reason": reason,
        "dryRun": dry_run,
        "failedTask": failed_task,
        "nodes": {
            "checked": len(results),
            "byOutcome": outcome_counts(results),
            "notHealthy": [r.dump() for r in listed],
            "notHealthyNotListed": len(notable) - len(listed),
        },
        "restartedTasks": len(new_tasks),
        "execution": {"arn": execution.id, "name": execution.name, "consoleUrl": console_url(execution.id)},
    }
    counts = ", ".join(f"{count} {name}" for name, count in document["nodes"]["byOutcome"].items())
    text = [
        f"{'DRY RUN (nothing was changed): ' if dry_run else ''}job {job_id} {outcome.value}.",
        f"Why: {reason}",
        "",
        f"Nodes: {len(results)} checked: {counts}",
        *(f"  {r.node_id}  {r.outcome.value}  {r.reason}{_left_to_do(r)}" for r in listed),
        *([f"  ... and {len(notable) - len(listed)} more not healthy"] if len(notable) > len(listed) else []),
        "",
        f"Failed task: {failed_task}",
        *([f"Restarted {len(new_tasks)} task(s): {listing(list(new_tasks), TASKS_LISTED)}"] if new_tasks else []),
        *_execution_lines(execution),
    ]
    return Notification(subject=subject, message=_structured(document, text))


def rerun_command(task_arn: str) -> str:
    """The operator command that starts the failed task's recovery again (docs/cli.md: start)."""
    return f"gpu-recovery start {task_arn}"


def error_notification(
    job_id: str | None,
    error: str,
    cause: str,
    execution: ExecutionContext,
    released: list[str],
    *,
    failed_task: str | None,
) -> Notification:
    subject = _subject(f"{PREFIX} ERROR {job_id or 'unknown job'}: {error}")
    summary = error_summary(error, cause)
    # The failure is not lost with the execution: the alert names the task and how to recover it again.
    rerun = rerun_command(failed_task) if failed_task else None
    document = {
        "jobId": job_id,
        "error": error,
        "summary": summary,
        "cause": cause[:CAUSE_IN_JSON],
        "locksReleased": released,
        "failedTask": failed_task,
        "rerun": rerun,
        "execution": {"arn": execution.id, "name": execution.name, "consoleUrl": console_url(execution.id)},
    }
    text = [
        f"The recovery of job {job_id or '(not identified yet)'} failed.",
        f"Error: {summary}",
        "",
        "Released for a human (status SUSPECT): " + (", ".join(released) if released else "no node"),
        *([f"Failed task: {failed_task}", f"To recover it again: {rerun}"] if rerun else []),
        *_execution_lines(execution),
    ]
    return Notification(subject=subject, message=_structured(document, text))


def _execution_lines(execution: ExecutionContext) -> list[str]:
    return ["", f"Execution: {execution.name}", f"Console: {console_url(execution.id)}"]


def _structured(document: dict[str, Any], text: list[str]) -> str:
    return json.dumps({"default": json.dumps(document, indent=2, sort_keys=True), "email": "\n".join(text) + "\n"})


def _field(document: dict[str, Any], name: str) -> Any:
    """A field of an AWS document in either casing (ECS task JSON in a Step Functions cause is PascalCase)."""
    return document.get(name, document.get(name[:1].upper() + name[1:]))


def _left_to_do(result: NodeResult) -> str:
    return f"  LEFT TO DO: {result.unfinished.todo} ({result.unfinished.error})" if result.unfinished else ""


def error_summary(error: str, cause: str) -> str:
    """The error in a cause, in one line: a Lambda error's type and message (not its stack trace), a stopped
    ECS task's stop code, reason and exit codes (not the whole task), else the start of the text."""
    try:
        document = json.loads(cause)
    except ValueError:
        document = None
    if isinstance(document, dict) and "errorMessage" in document:
        return f"{document.get('errorType') or error}: {document['errorMessage']}"
    if isinstance(document, dict) and _field(document, "taskArn"):
        exits = [
            f"{_field(c, 'name')} exit {_field(c, 'exitCode')}"
            for c in _field(document, "containers") or []
            if isinstance(c, dict) and _field(c, "exitCode") is not None
        ]
        parts = [_field(document, "stopCode"), _field(document, "stoppedReason"), ", ".join(exits)]
        return f"{error}: ECS task stopped: " + "; ".join(str(p) for p in parts if p)
    flat = " ".join(cause.split())
    text = flat if len(flat) <= CAUSE_IN_TEXT else flat[: CAUSE_IN_TEXT - 3] + "..."
    return f"{error}: {text}" if text else error
