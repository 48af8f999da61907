"""notify.py: a subject a human can triage from a phone, and a JSON body."""

from __future__ import annotations

import json

from recovery.models import ExecutionContext, JobOutcomeKind, NodeOutcome, NodeResult
from recovery.notify import SNS_SUBJECT_LIMIT, console_url, error_notification, recovery_notification

ARN = "arn:aws:states:eu-west-1:123456789012:execution:gpu-recovery:exec-1"
EXECUTION = ExecutionContext(id=ARN, name="exec-1")
TASK = "arn:aws:ecs:eu-west-1:123456789012:task/gpu-training/4f3c2b1a9d8e7f6a5b4c3d2e1f0a9b8c"


def results() -> list[NodeResult]:
    return [
        NodeResult(node_id="i-0a1b2c3d4e5f60718", outcome=NodeOutcome.QUARANTINED, reason="replace"),
        NodeResult(node_id="i-0fedcba9876543210", outcome=NodeOutcome.HEALTHY, reason="ok"),
    ]


def test_console_url_names_region_and_execution() -> None:
    url = console_url(ARN)
    assert url.startswith("https://console.aws.amazon.com/states/home?region=eu-west-1#")
    assert url.endswith(ARN)
    china = "arn:aws-cn:states:cn-north-1:123456789012:execution:gpu-recovery:exec-1"
    assert console_url(china).startswith("https://console.amazonaws.cn/states/home?region=cn-north-1#")


def test_subject_is_short_ascii_and_triageable() -> None:
    job = "llama-70b-pretraining-run-42-\u00e9t\u00e9-" + "x" * 120
    n = recovery_notification(
        job, JobOutcomeKind.RESTARTED, "ok", results(), EXECUTION, dry_run=True, failed_task=TASK, new_tasks={}
    )
    assert len(n.subject) <= SNS_SUBJECT_LIMIT
    assert n.subject.isascii()
    assert "\n" not in n.subject
    assert n.subject.startswith("[GPU Recovery] DRY RUN llama-70b")


def test_subject_names_notable_nodes() -> None:
    n = recovery_notification(
        "job-a", JobOutcomeKind.RESTARTED, "ok", results(), EXECUTION, dry_run=False, failed_task=TASK, new_tasks={}
    )
    assert n.subject == "[GPU Recovery] job-a RESTARTED: i-0a1b2c3d4e5f60718 QUARANTINED"


def test_body_is_json_with_everything_else() -> None:
    n = recovery_notification(
        "job-a",
        JobOutcomeKind.FAILED,
        "all GPUs healthy",
        results(),
        EXECUTION,
        dry_run=False,
        failed_task=TASK,
        new_tasks={TASK: TASK + "x"},
    )
    body = json.loads(n.message)
    assert set(body) == {"jobId", "outcome", "reason", "dryRun", "failedTask", "nodes", "newTasks", "execution"}
    assert body["outcome"] == "FAILED"
    assert body["nodes"][0]["nodeId"] == "i-0a1b2c3d4e5f60718"
    assert body["execution"]["consoleUrl"] == console_url(ARN)


def test_error_notification() -> None:
    n = error_notification(None, "States.TaskFailed", "boom", EXECUTION, ["i-1"])
    assert n.subject == "[GPU Recovery] ERROR unknown job: States.TaskFailed"
    body = json.loads(n.message)
    assert set(body) == {"jobId", "error", "cause", "locksReleased", "execution"}
    assert body["locksReleased"] == ["i-1"]
