"""notify.py: a subject a human can triage from a phone, and a JSON body."""

from __future__ import annotations

import json
from typing import Any

from recovery.models import ExecutionContext, JobOutcomeKind, NodeOutcome, NodeResult
from recovery.notify import (
    SNS_SUBJECT_LIMIT,
    console_url,
    error_notification,
    error_summary,
    listing,
    recovery_notification,
)

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
        job, JobOutcomeKind.RESTARTED, "ok", results(), EXECUTION, dry_run=True, failed_task=TASK, new_tasks=[]
    )
    assert len(n.subject) <= SNS_SUBJECT_LIMIT
    assert n.subject.isascii()
    assert "\n" not in n.subject
    assert n.subject.startswith("[GPU Recovery] DRY RUN llama-70b")


def test_subject_names_notable_nodes() -> None:
    n = recovery_notification(
        "job-a", JobOutcomeKind.RESTARTED, "ok", results(), EXECUTION, dry_run=False, failed_task=TASK, new_tasks=[]
    )
    assert n.subject == "[GPU Recovery] job-a RESTARTED: i-0a1b2c3d4e5f60718 QUARANTINED"


def structured(message: str) -> tuple[dict[str, Any], str]:
    """SNS MessageStructure=json: the JSON document every protocol gets by default, and the email text."""
    envelope = json.loads(message)
    assert set(envelope) == {"default", "email"}
    return json.loads(envelope["default"]), envelope["email"]


def test_machines_get_json_and_people_plain_text() -> None:
    n = recovery_notification(
        "job-a",
        JobOutcomeKind.FAILED,
        "all GPUs healthy",
        results(),
        EXECUTION,
        dry_run=False,
        failed_task=TASK,
        new_tasks=[TASK + "x"],
    )
    body, email = structured(n.message)
    assert set(body) == {
        "jobId", "outcome", "reason", "dryRun", "failedTask", "nodes", "restartedTasks", "execution",
    }  # fmt: skip
    assert body["outcome"] == "FAILED"
    assert body["nodes"]["byOutcome"] == {"HEALTHY": 1, "QUARANTINED": 1}
    assert body["nodes"]["notHealthy"][0]["nodeId"] == "i-0a1b2c3d4e5f60718"
    assert body["restartedTasks"] == 1
    assert body["execution"]["consoleUrl"] == console_url(ARN)
    assert email.splitlines()[:2] == ["job job-a FAILED.", "Why: all GPUs healthy"]
    assert "Nodes: 2 checked: 1 HEALTHY, 1 QUARANTINED" in email
    assert "  i-0a1b2c3d4e5f60718  QUARANTINED  " in email
    assert f"Restarted 1 task(s): {TASK}x" in email
    assert f"Console: {console_url(ARN)}" in email
    assert "{" not in email


def test_error_notification() -> None:
    n = error_notification(None, "States.TaskFailed", "boom", EXECUTION, ["i-1"], failed_task=None)
    assert n.subject == "[GPU Recovery] ERROR unknown job: States.TaskFailed"
    body, email = structured(n.message)
    assert set(body) == {"jobId", "error", "summary", "cause", "locksReleased", "failedTask", "rerun", "execution"}
    assert body["locksReleased"] == ["i-1"]
    assert "Error: States.TaskFailed: boom" in email
    assert "Released for a human (status SUSPECT): i-1" in email
    assert "gpu-recovery start" not in email


def test_an_error_notification_says_how_to_recover_the_failed_task_again() -> None:
    task = "arn:aws:ecs:us-east-1:123456789012:task/gpu-cluster/0123456789abcdef0123456789abcdef"
    body, email = structured(error_notification(None, "Throttled", "x", EXECUTION, [], failed_task=task).message)
    assert body["failedTask"] == task
    assert body["rerun"] == f"gpu-recovery start {task}"
    assert f"To recover it again: gpu-recovery start {task}" in email


def test_a_lambda_error_is_its_type_and_message_not_its_stack_trace() -> None:
    cause = json.dumps(
        {
            "errorMessage": "ECS cluster 'gpu-cluster' not found",
            "errorType": "LookupError",
            "requestId": "r",
            "stackTrace": ['  File "/var/task/x.py", line 1\n' * 80],
        }
    )
    assert len(cause) > 1000
    _, email = structured(error_notification("job-a", "LookupError", cause, EXECUTION, [], failed_task=None).message)
    assert "Error: LookupError: ECS cluster 'gpu-cluster' not found" in email
    assert "stackTrace" not in email
    assert "File" not in email


def test_a_stopped_task_is_its_stop_code_reason_and_exit_codes() -> None:
    task = {
        "TaskArn": TASK,
        "StopCode": "EssentialContainerExited",
        "StoppedReason": "Essential container in task exited",
        "Containers": [{"Name": "dcgm-check", "ExitCode": 226, "LastStatus": "STOPPED"}],
        "Attachments": [{"Details": [{"Name": "x", "Value": "y" * 300}]}],
    }
    assert error_summary("States.TaskFailed", json.dumps(task)) == (
        "States.TaskFailed: ECS task stopped: EssentialContainerExited; Essential container in task exited; "
        "dcgm-check exit 226"
    )


def test_any_other_cause_is_cut() -> None:
    summary = error_summary("States.Timeout", "x " * 1000)
    assert summary.startswith("States.Timeout: x x")
    assert len(summary) < 520


def test_a_128_node_job_fits_one_sns_message_and_names_few_nodes() -> None:
    # 8 tasks on each of 128 nodes, every node repaired with a long reason: the message must stay far below
    # SNS's 256 KB (and the step output that carries it below Step Functions' 256 KB).
    many = [
        NodeResult(
            node_id=f"i-{n:017x}",
            outcome=NodeOutcome.REPAIRED,
            reason="XID 79 on GPU 3: " + "r" * 400,
            container_instance_arn=f"arn:aws:ecs:eu-west-1:123456789012:container-instance/gpu-training/{n:032x}",
        )
        for n in range(128)
    ]
    new_tasks = [f"{TASK[:-32]}{n:032x}" for n in range(128 * 8)]
    n = recovery_notification(
        "job-a", JobOutcomeKind.RESTARTED, "ok", many, EXECUTION, dry_run=False, failed_task=TASK, new_tasks=new_tasks
    )
    assert len(n.message.encode()) < 32 * 1024
    body, email = structured(n.message)
    assert body["nodes"]["byOutcome"] == {"REPAIRED": 128}
    assert (len(body["nodes"]["notHealthy"]), body["nodes"]["notHealthyNotListed"]) == (20, 108)
    assert body["restartedTasks"] == 1024
    assert "  ... and 108 more not healthy" in email
    assert "and 1014 more" in email
    assert n.subject.endswith("and 125 more") or len(n.subject) == SNS_SUBJECT_LIMIT


def test_listing_names_a_few_and_counts_the_rest() -> None:
    assert listing(["a", "b"], 3) == "a, b"
    assert listing(["a", "b", "c", "d", "e"], 3) == "a, b, c and 2 more"
