"""Notifications: a subject someone can triage from a phone, and a JSON body with everything else."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from recovery.models import ExecutionContext, JobOutcomeKind, NodeOutcome, NodeResult, Notification

SNS_SUBJECT_LIMIT = 100  # SNS rejects longer subjects
PREFIX = "[GPU Recovery]"
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


def node_summary(results: Sequence[NodeResult]) -> str:
    notable = [r for r in results if r.outcome != NodeOutcome.HEALTHY]
    if not notable:
        return f"{len(results)} node(s) healthy"
    return ", ".join(f"{r.node_id} {r.outcome.value}" for r in notable)


def recovery_notification(
    job_id: str,
    outcome: JobOutcomeKind,
    reason: str,
    results: Sequence[NodeResult],
    execution: ExecutionContext,
    *,
    dry_run: bool,
    failed_task: str,
    new_tasks: dict[str, str],
) -> Notification:
    mode = "DRY RUN " if dry_run else ""
    subject = _subject(f"{PREFIX} {mode}{job_id} {outcome.value}: {node_summary(results)}")
    body: dict[str, Any] = {
        "jobId": job_id,
        "outcome": outcome.value,
        "reason": reason,
        "dryRun": dry_run,
        "failedTask": failed_task,
        "nodes": [r.dump() for r in results],
        "newTasks": new_tasks,
        "execution": {"arn": execution.id, "name": execution.name, "consoleUrl": console_url(execution.id)},
    }
    return Notification(subject=subject, message=json.dumps(body, indent=2, sort_keys=True))


def error_notification(
    job_id: str | None, error: str, cause: str, execution: ExecutionContext, released: list[str]
) -> Notification:
    subject = _subject(f"{PREFIX} ERROR {job_id or 'unknown job'}: {error}")
    body = {
        "jobId": job_id,
        "error": error,
        "cause": cause,
        "locksReleased": released,
        "execution": {"arn": execution.id, "name": execution.name, "consoleUrl": console_url(execution.id)},
    }
    return Notification(subject=subject, message=json.dumps(body, indent=2, sort_keys=True))
