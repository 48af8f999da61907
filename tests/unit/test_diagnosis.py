"""diagnosis.verdict_from_check: the check's exit-code contract, and reading its output."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from recovery.diagnosis import RESULT_MARKER, instant, verdict_from_check
from recovery.ecs_task import EcsTask
from recovery.models import Failure, RepairAction, VerdictStatus

CONTAINER = "dcgm-check"
CHECK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/gpu-training/5b0e1c2d3f4a59687766554433221100"
PASSING = {
    "DCGM Diagnostic": {
        "test_categories": [
            {
                "category": "Deployment",
                "tests": [{"name": "software", "results": [{"entity_id": 0, "status": "Pass"}]}],
            },
            {
                "category": "Hardware",
                "tests": [
                    {
                        "name": "memory",
                        "results": [{"entity_id": 0, "status": "Pass"}, {"entity_id": 1, "status": "Pass"}],
                    }
                ],
            },
        ]
    }
}
FAILING = {
    "DCGM Diagnostic": {
        "test_categories": [
            {
                "category": "Hardware",
                "tests": [
                    {
                        "name": "memory",
                        "results": [
                            {"entity_id": 0, "status": "Pass"},
                            {
                                "entity_id": 3,
                                "status": "Fail",
                                "warnings": [
                                    {
                                        "warning": "GPU 3 has uncorrectable memory errors and row remappings pending",
                                        "error_id": 1,
                                        "error_category": 1,
                                        "error_severity": 2,
                                    }
                                ],
                            },
                        ],
                    }
                ],
            }
        ]
    }
}
NOISE = "Starting DCGM check, level 2\nnvidia-smi: 8 GPUs found\n"


def sync_result(exit_code: int | None, **task: Any) -> dict[str, Any]:
    """What ecs:runTask.sync returns (ResultSelector {"task.$": "$"}): the task in PascalCase."""
    container: dict[str, Any] = {"Name": CONTAINER, "LastStatus": "STOPPED"}
    if exit_code is not None:
        container["ExitCode"] = exit_code
    return {
        "task": {
            "TaskArn": CHECK_ARN,
            "LastStatus": "STOPPED",
            "StopCode": "EssentialContainerExited",
            "Containers": [container],
            **task,
        }
    }


def task_failed(exit_code: int) -> dict[str, Any]:
    """A non-zero exit: the .sync state fails with States.TaskFailed and the task JSON in Cause."""
    return {"Error": "States.TaskFailed", "Cause": json.dumps(sync_result(exit_code)["task"])}


def envelope(result: dict[str, Any]) -> str:
    return NOISE + RESULT_MARKER + json.dumps(result) + "\nCheck finished\n"


def test_exit_0_with_readable_result_is_healthy() -> None:
    v = verdict_from_check(sync_result(0), envelope({"dcgmi": PASSING, "xids": [], "gpus": []}), CONTAINER)
    assert v.status == VerdictStatus.HEALTHY
    assert v.exit_code == 0
    assert v.check_task_arn == CHECK_ARN


@pytest.mark.parametrize("log", [None, "", NOISE, NOISE + RESULT_MARKER + "{not json"])
def test_exit_0_without_readable_output_is_inconclusive_never_healthy(log: str | None) -> None:
    v = verdict_from_check(sync_result(0), log, CONTAINER)
    assert v.status == VerdictStatus.INCONCLUSIVE
    assert v.action == RepairAction.NONE


def test_nonzero_exit_is_unhealthy_reboot() -> None:
    v = verdict_from_check(sync_result(1), envelope({"dcgmi": FAILING}), CONTAINER)
    assert (v.status, v.action, v.exit_code) == (VerdictStatus.UNHEALTHY, RepairAction.REBOOT, 1)


def test_exit_205_without_output_drains_and_reboots_to_learn_the_error() -> None:
    # 205 says an ISOLATE error was found, not which one: NVIDIA's next step (reset, reboot, replace) is per error.
    v = verdict_from_check(task_failed(205), None, CONTAINER)
    assert (v.status, v.action, v.exit_code) == (VerdictStatus.UNHEALTHY, RepairAction.REBOOT, 205)
    assert "ISOLATE" in v.reasons[0]


def test_exit_137_killed_is_inconclusive() -> None:
    v = verdict_from_check(task_failed(137), None, CONTAINER)
    assert v.status == VerdictStatus.INCONCLUSIVE
    assert v.exit_code == 137
    assert "killed" in v.reasons[0]


def test_task_failed_cause_carries_exit_code() -> None:
    v = verdict_from_check(task_failed(3), envelope({"dcgmi": FAILING}), CONTAINER)
    assert (v.status, v.action, v.exit_code, v.check_task_arn) == (
        VerdictStatus.UNHEALTHY,
        RepairAction.REBOOT,
        3,
        CHECK_ARN,
    )


@pytest.mark.parametrize(
    "check",
    [
        {"Error": "States.Timeout", "Cause": ""},
        {
            "Error": "ECS.AmazonECSException",
            "Cause": "Tasks provisioning capacity limit exceeded (Service: AmazonECS; Status Code: 400)",
        },
        {"Error": "States.TaskFailed", "Cause": "RESOURCE:GPU"},
        {"Error": "States.TaskFailed", "Cause": json.dumps({"Failures": [{"Reason": "RESOURCE:GPU"}]})},
    ],
)
def test_check_that_never_ran_is_inconclusive(check: dict[str, Any]) -> None:
    v = verdict_from_check(check, None, CONTAINER)
    assert v.status == VerdictStatus.INCONCLUSIVE
    assert check["Error"] in v.reasons[0]


def test_no_exit_code_is_inconclusive() -> None:
    v = verdict_from_check(sync_result(None, StoppedReason="Host EC2 instance was terminated"), None, CONTAINER)
    assert v.status == VerdictStatus.INCONCLUSIVE
    assert "terminated" in v.reasons[0]


def test_exit_code_of_another_container_is_not_read() -> None:
    check = sync_result(0)
    check["task"]["Containers"][0]["Name"] = "log-router"
    assert verdict_from_check(check, envelope({"dcgmi": PASSING}), CONTAINER).status == VerdictStatus.INCONCLUSIVE


def test_raw_dcgmi_json_is_read() -> None:
    v = verdict_from_check(sync_result(0), json.dumps(PASSING, indent=2), CONTAINER)
    assert v.status == VerdictStatus.HEALTHY


def test_truncated_raw_json_is_inconclusive() -> None:
    text = json.dumps(PASSING, indent=2)
    v = verdict_from_check(sync_result(0), text[: len(text) // 2] + "\n}", CONTAINER)
    assert v.status == VerdictStatus.INCONCLUSIVE
    assert "truncated" in v.reasons[0]


def test_findings_name_the_failing_gpu() -> None:
    v = verdict_from_check(task_failed(1), envelope({"dcgmi": FAILING}), CONTAINER)
    assert v.findings == [
        {"gpu": 3, "test": "memory", "messages": ["GPU 3 has uncorrectable memory errors and row remappings pending"]}
    ]


def test_exit_0_makes_a_printed_failure_a_warning() -> None:
    # dcgmi prints a WARN result as "Fail" and exits 0 when nothing counted as a failure.
    v = verdict_from_check(sync_result(0), json.dumps(FAILING), CONTAINER)
    assert (v.status, v.action) == (VerdictStatus.HEALTHY, RepairAction.NONE)
    assert v.gpus[0].dcgm[0]["message"].startswith("GPU 3 has uncorrectable")


def test_xids_in_envelope_are_findings_but_do_not_overrule_passing_tests() -> None:
    result = {"dcgmi": PASSING, "xids": [{"gpuIndex": 5, "xid": 13, "line": "NVRM: Xid (PCI:0000:a0:00): 13"}]}
    v = verdict_from_check(sync_result(0), envelope(result), CONTAINER)
    assert v.status == VerdictStatus.HEALTHY
    assert v.findings[-1]["gpu"] == 5
    assert v.findings[-1]["xid"] == 13


def test_after_a_successful_reset_xids_from_before_the_check_do_not_count() -> None:
    check = sync_result(0, StartedAt="2026-11-29T10:00:00Z")
    line = "2026-11-29T09:58:00,000000+00:00 NVRM: Xid (PCI:0000:20:1c): 95, pid='<unknown>', name=<unknown>, x"
    log = envelope({"dcgmi": PASSING, "xids": [{"gpuIndex": 2, "xid": 95, "line": line}]})
    assert verdict_from_check(check, log, CONTAINER).action == RepairAction.RESET_GPU
    after = verdict_from_check(check, log, CONTAINER, after_reset=True)
    assert (after.status, after.action) == (VerdictStatus.HEALTHY, RepairAction.NONE)
    assert any("stale" in r for r in after.reasons)
    later = line.replace("09:58:00", "10:01:00")
    log = envelope({"dcgmi": PASSING, "xids": [{"gpuIndex": 2, "xid": 95, "line": later}]})
    assert verdict_from_check(check, log, CONTAINER, after_reset=True).action == RepairAction.RESET_GPU


def test_xids_from_before_the_failed_task_started_do_not_count() -> None:
    before = "2026-11-29T09:00:00,000000+00:00 NVRM: Xid (PCI:0000:20:1c): 95, pid='<unknown>', name=<unknown>, x"
    log = envelope({"dcgmi": PASSING, "xids": [{"gpuIndex": 2, "xid": 95, "line": before}]})
    started = instant("2026-11-29T09:30:00.000Z")
    v = verdict_from_check(sync_result(0), log, CONTAINER, since=started)
    assert (v.status, v.action) == (VerdictStatus.HEALTHY, RepairAction.NONE)
    assert verdict_from_check(sync_result(0), log, CONTAINER).action == RepairAction.RESET_GPU


def test_the_failed_tasks_start_travels_from_the_ecs_event() -> None:
    detail = json.loads((Path(__file__).parent / "fixtures" / "task_stopped_gpu.json").read_text())["detail"]
    task = EcsTask.model_validate(detail)
    assert task.started_at == instant(detail["startedAt"])
    assert Failure.model_validate({"taskArn": "t", "clusterArn": "c", "source": "event", "reason": "r",
                                   "startedAt": detail["startedAt"]}).started_at == detail["startedAt"]  # fmt: skip
    assert instant(1764550964830) == datetime(2025, 12, 1, 1, 2, 44, 830000, tzinfo=UTC)  # epoch milliseconds
