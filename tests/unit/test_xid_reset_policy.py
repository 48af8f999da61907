"""plan_node_step for RESET_GPU verdicts: reset when enabled, otherwise (or when it fails) reboot; bounded."""

from __future__ import annotations

import re

import pytest

from infra.gpu_reset_document import GPU_INDEX_LIST_PATTERN
from recovery.models import NodeStep, RepairAction, VerdictStatus
from recovery.policy import gpu_reset_indexes, plan_node_step
from recovery.requests import CheckPlan, Verdict

RESET = Verdict(status=VerdictStatus.UNHEALTHY, action=RepairAction.RESET_GPU, reasons=["XID 95"])
HEALTHY = Verdict(status=VerdictStatus.HEALTHY, action=RepairAction.NONE, reasons=["ok"])
INITIAL, AFTER_RESET = CheckPlan(), CheckPlan(phase="AFTER_RESET")


def plan(verdict: Verdict, check: CheckPlan, *, enabled: bool, reboots: int = 0, dry: bool = False) -> tuple:
    return plan_node_step(verdict, check, reboots, 2, dry, reset_enabled=enabled, reset_gpus=[2])


def test_reset_when_enabled() -> None:
    step, reason = plan(RESET, INITIAL, enabled=True)
    assert step == NodeStep.RESET_GPU
    assert "reset GPU 2" in reason


def test_reboot_when_disabled_and_says_why() -> None:
    step, reason = plan(RESET, INITIAL, enabled=False)
    assert step == NodeStep.REBOOT
    assert reason.startswith("GPU reset disabled (GPU_RESET_ENABLED=false): reboot 1 of 2")


def test_no_gpu_index_means_reboot() -> None:
    step, reason = plan_node_step(RESET, INITIAL, 0, 2, False, reset_enabled=True, reset_gpus=[])
    assert (step, reason.startswith("no GPU index to reset")) == (NodeStep.REBOOT, True)


@pytest.mark.parametrize(
    ("check", "start"),
    [
        (AFTER_RESET, "the fault survived the GPU reset"),
        (CheckPlan(phase="AFTER_RESET", reset_status="Failed"), "the GPU reset did not complete (Failed)"),
    ],
)
def test_after_a_reset_escalates_to_reboot_never_a_second_reset(check: CheckPlan, start: str) -> None:
    step, reason = plan(RESET, check, enabled=True)
    assert step == NodeStep.REBOOT
    assert reason.startswith(start)


def test_after_a_reset_the_reboot_budget_still_holds() -> None:
    assert plan(RESET, AFTER_RESET, enabled=True, reboots=2)[0] == NodeStep.QUARANTINE


def test_after_reboot_a_reset_verdict_quarantines() -> None:
    assert plan(RESET, CheckPlan(phase="AFTER_REBOOT"), enabled=True)[0] == NodeStep.QUARANTINE


def test_healthy_after_reset_is_repaired() -> None:
    assert plan(HEALTHY, AFTER_RESET, enabled=True) == (NodeStep.RELEASE_REPAIRED, "GPUs healthy after the GPU reset")


def test_dry_run_would_reset() -> None:
    step, reason = plan(RESET, INITIAL, enabled=True, dry=True)
    assert step == NodeStep.DRY_RUN
    assert reason.startswith("dry run: would reset gpu")


def test_restart_app_releases_the_node() -> None:
    app = Verdict(status=VerdictStatus.HEALTHY, action=RepairAction.RESTART_APP, reasons=["XID 13"])
    assert plan(app, INITIAL, enabled=True)[0] == NodeStep.RELEASE


def test_reset_indexes_match_the_documents_allowed_pattern() -> None:
    assert gpu_reset_indexes([0, 3]) == "0,3"
    assert re.fullmatch(GPU_INDEX_LIST_PATTERN, gpu_reset_indexes(range(16)))
    for injected in ("0; reboot", "0 1", "", "0,", "$(id)", ",".join(["1"] * 17), "100"):
        assert not re.fullmatch(GPU_INDEX_LIST_PATTERN, injected), injected
