"""policy.py: every decision, pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from unit_helpers import load_event

from recovery.ecs_task import EcsTask
from recovery.models import (
    Decision,
    JobOutcomeKind,
    LockOutcome,
    NodeOutcome,
    NodeResult,
    NodeStep,
    RepairAction,
    VerdictStatus,
)
from recovery.policy import (
    classify_task,
    decide_job,
    decide_node_lock,
    exited_cleanly,
    job_identity,
    plan_node_step,
    reboots_in_window,
)
from recovery.requests import CheckPlan, Verdict

CLUSTER_ARN = "arn:aws:ecs:us-east-1:123456789012:cluster/gpu-training"
ME = "arn:aws:states:us-east-1:123456789012:execution:gpu-recovery:exec-1"
DCGM_FAMILY = "gpu-recovery-dcgm-check"
OTHER = "arn:aws:states:us-east-1:123456789012:execution:gpu-recovery:exec-2"


def task(name: str = "task_stopped_gpu", **changes: Any) -> EcsTask:
    detail = load_event(name)["detail"] | changes
    return EcsTask.model_validate(detail)


def classify(t: EcsTask, *, manual: bool = False, previous: dict[str, Any] | None = None) -> tuple[Decision, str]:
    return classify_task(t, CLUSTER_ARN, manual=manual, previous=previous, dcgm_task_family=DCGM_FAMILY)


# ---- classify_task ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("task_stopped_other_cluster", "NOT_IN_CLUSTER"),
        ("task_stopped_own_dcgm_check", "OWN_DCGM_TASK"),
        ("task_stopped_no_gpu", "NOT_A_GPU_TASK"),
        ("task_running_gpu", "NOT_STOPPED"),
        ("task_stopped_user_initiated", "STOP_CODE_NOT_GPU"),
        ("task_stopped_service_scheduler", "STOP_CODE_NOT_GPU"),
        ("task_stopped_spot_interruption", "STOP_CODE_NOT_GPU"),
        ("task_stopped_termination_notice", "STOP_CODE_NOT_GPU"),
        ("task_stopped_exit0", "EXITED_CLEANLY"),
    ],
)
def test_classify_ignores_with_reason(fixture: str, reason: str) -> None:
    decision, why = classify(task(fixture), manual=False, previous=None)
    assert decision == Decision.IGNORE
    assert why.startswith(f"{reason}: ")


def test_job_started_by_another_step_functions_workflow_is_recovered() -> None:
    # Step Functions stamps startedBy "AWS Step Functions" on every ecs:runTask.sync task, customers' too.
    decision, _ = classify(task(startedBy="AWS Step Functions"))
    assert decision == Decision.RECOVER


def test_check_family_is_ours_whoever_started_it() -> None:
    own = task("task_stopped_own_dcgm_check", startedBy="someone", group="adhoc")
    assert classify(own)[1].startswith("OWN_DCGM_TASK: ")
    assert classify(own, manual=True)[0] == Decision.IGNORE


def test_a_supplied_check_family_is_ours() -> None:
    supplied = task(taskDefinitionArn="arn:aws-cn:ecs:cn-north-1:123456789012:task-definition/my-dcgm:7")
    decision, why = classify_task(supplied, CLUSTER_ARN, manual=False, previous=None, dcgm_task_family="my-dcgm")
    assert (decision, why.split(":")[0]) == (Decision.IGNORE, "OWN_DCGM_TASK")


def test_classify_recovers_gpu_failure() -> None:
    decision, why = classify(task(), manual=False, previous=None)
    assert decision == Decision.RECOVER
    assert "EssentialContainerExited" in why
    assert "trainer=1" in why


def test_classify_duplicate_same_version() -> None:
    previous = {"lastEventVersion": 5, "recoveryExecution": ME}
    decision, why = classify(task(), manual=False, previous=previous)
    assert decision == Decision.DUPLICATE
    assert "version 5" in why


def test_classify_duplicate_newer_version_of_handled_task() -> None:
    previous = {"lastEventVersion": 4, "recoveryExecution": ME}
    decision, why = classify(task(), manual=False, previous=previous)
    assert decision == Decision.DUPLICATE
    assert ME in why


def test_classify_recorded_sibling_without_recovery_is_recovered() -> None:
    # A running sibling recorded by an earlier recovery (version 3) that now fails itself (version 5).
    decision, _ = classify(task(), manual=False, previous={"lastEventVersion": 3})
    assert decision == Decision.RECOVER


@pytest.mark.parametrize("fixture", ["task_stopped_exit0", "task_stopped_user_initiated", "task_running_gpu"])
def test_manual_skips_exit_stop_and_status_checks(fixture: str) -> None:
    decision, _ = classify(task(fixture), manual=True, previous=None)
    assert decision == Decision.RECOVER


def test_manual_skips_version_check() -> None:
    previous = {"lastEventVersion": 5, "recoveryExecution": OTHER}
    assert classify(task(), manual=True, previous=previous)[0] == Decision.RECOVER


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("task_stopped_other_cluster", "NOT_IN_CLUSTER"),
        ("task_stopped_own_dcgm_check", "OWN_DCGM_TASK"),
        ("task_stopped_no_gpu", "NOT_A_GPU_TASK"),
    ],
)
def test_manual_still_refuses_what_is_not_ours(fixture: str, reason: str) -> None:
    decision, why = classify(task(fixture), manual=True, previous=None)
    assert decision == Decision.IGNORE
    assert why.startswith(reason)


def test_task_that_failed_to_start_is_not_a_gpu_failure() -> None:
    # An image that cannot be pulled: the task never ran on a GPU.
    failed = task(stopCode="TaskFailedToStart", stoppedReason="CannotPullContainerError: pull access denied")
    decision, why = classify_task(failed, CLUSTER_ARN, manual=False, previous=None, dcgm_task_family=DCGM_FAMILY)
    assert decision == Decision.IGNORE
    assert why.startswith("STOP_CODE_NOT_GPU: ")


def test_infrastructure_health_stop_is_checked() -> None:
    decision, _ = classify_task(
        task(stopCode="InfrastructureHealth"), CLUSTER_ARN, manual=False, previous=None, dcgm_task_family=DCGM_FAMILY
    )
    assert decision == Decision.RECOVER


def _with_sidecar(trainer_exit: int | None, sidecar_exit: int | None) -> EcsTask:
    detail = load_event("task_stopped_gpu")["detail"]
    trainer = detail["containers"][0] | {"exitCode": trainer_exit}
    sidecar = {"name": "log-router", "lastStatus": "STOPPED", "exitCode": sidecar_exit}
    return EcsTask.model_validate(detail | {"containers": [trainer, sidecar]})


@pytest.mark.parametrize("sidecar_exit", [None, 137, 0])
def test_clean_exit_is_judged_on_essential_containers_only(sidecar_exit: int | None) -> None:
    # The trainer finished; the log-router sidecar was stopped with the task (no exit code, or SIGKILL).
    clean = _with_sidecar(0, sidecar_exit)
    decision, why = classify_task(
        clean, CLUSTER_ARN, manual=False, previous=None, essential=lambda: {"trainer"}, dcgm_task_family=DCGM_FAMILY
    )
    assert decision == Decision.IGNORE
    assert why.startswith("EXITED_CLEANLY: ")


def test_essential_container_failure_is_recovered_whatever_the_sidecar_did() -> None:
    failed = _with_sidecar(1, 0)
    decision, _ = classify_task(
        failed, CLUSTER_ARN, manual=False, previous=None, essential=lambda: {"trainer"}, dcgm_task_family=DCGM_FAMILY
    )
    assert decision == Decision.RECOVER


def test_exit_codes_without_the_definition_judge_the_containers_that_reported_one() -> None:
    assert exited_cleanly(_with_sidecar(0, None), None)
    assert not exited_cleanly(_with_sidecar(0, 1), None)
    assert not exited_cleanly(_with_sidecar(None, None), None)


# ---- job_identity -------------------------------------------------------------------------------
def test_job_identity_group() -> None:
    assert job_identity(task(), "group") == ("job-a", False)


def test_job_identity_started_by() -> None:
    assert job_identity(task(), "startedBy") == ("airflow/llm-train", False)


def test_job_identity_tag() -> None:
    tagged = task(tags=[{"key": "team", "value": "nlp"}, {"key": "training-job", "value": "llama-70b-run-42"}])
    assert job_identity(tagged, "tag:training-job") == ("llama-70b-run-42", False)


def test_job_identity_missing_key_is_a_job_of_one() -> None:
    job_id, _ = job_identity(task(), "tag:training-job")
    assert job_id == "task:4f3c2b1a9d8e7f6a5b4c3d2e1f0a9b8c"
    assert job_identity(task(group=None), "group")[0] == "task:4f3c2b1a9d8e7f6a5b4c3d2e1f0a9b8c"


@pytest.mark.parametrize(
    ("job_key", "changes"),
    [
        ("group", {"group": "family:llm-train"}),
        ("group", {"group": "service:llm-inference"}),
        ("startedBy", {"startedBy": "ecs-svc/9223370493064830016"}),
    ],
)
def test_job_identity_ecs_default_keys_are_a_job_of_one(job_key: str, changes: dict[str, str]) -> None:
    # ECS fills these in for every task launched without a group, or for every replica of a service:
    # tasks sharing them are unrelated, and one crashing must not stop the others.
    assert job_identity(task(**changes), job_key)[0] == "task:4f3c2b1a9d8e7f6a5b4c3d2e1f0a9b8c"


@pytest.mark.parametrize("changes", [{"group": "service:llm-inference"}, {"startedBy": "ecs-svc/9223370493064830016"}])
def test_job_identity_service_managed(changes: dict[str, str]) -> None:
    assert job_identity(task(**changes), "group")[1] is True


# ---- plan_node_step -----------------------------------------------------------------------------
def verdict(status: str, action: str = "NONE") -> Verdict:
    return Verdict(status=VerdictStatus(status), action=RepairAction(action), reasons=["test"])


INITIAL = CheckPlan()
AFTER_REBOOT = CheckPlan(phase="AFTER_REBOOT")


@pytest.mark.parametrize(
    ("v", "plan", "reboots", "dry_run", "step"),
    [
        (verdict("HEALTHY"), INITIAL, 0, False, NodeStep.RELEASE),
        (verdict("HEALTHY"), AFTER_REBOOT, 1, False, NodeStep.RELEASE_REPAIRED),
        (verdict("UNHEALTHY", "RESTART_APP"), INITIAL, 0, False, NodeStep.RELEASE),
        pytest.param(
            verdict("INCONCLUSIVE"),
            INITIAL,
            0,
            False,
            NodeStep.RECHECK,
        ),
        pytest.param(
            verdict("INCONCLUSIVE"),
            CheckPlan(inconclusive_checks=1),
            0,
            False,
            NodeStep.SUSPECT,
        ),
        (verdict("UNHEALTHY", "REPLACE"), INITIAL, 0, False, NodeStep.QUARANTINE),
        (verdict("UNHEALTHY", "REBOOT"), AFTER_REBOOT, 1, False, NodeStep.QUARANTINE),
        (verdict("UNHEALTHY", "REBOOT"), INITIAL, 2, False, NodeStep.QUARANTINE),
        (verdict("UNHEALTHY", "REBOOT"), INITIAL, 1, False, NodeStep.REBOOT),
        (verdict("UNHEALTHY", "REBOOT"), INITIAL, 0, True, NodeStep.DRY_RUN),
        (verdict("UNHEALTHY", "REPLACE"), INITIAL, 0, True, NodeStep.DRY_RUN),
    ],
)
def test_plan_node_step(v: Verdict, plan: CheckPlan, reboots: int, dry_run: bool, step: NodeStep) -> None:
    assert plan_node_step(v, plan, reboots, 2, dry_run)[0] == step


def test_plan_node_step_reasons_say_why() -> None:
    assert "budget exhausted (2 of 2" in plan_node_step(verdict("UNHEALTHY", "REBOOT"), INITIAL, 2, 2, False)[1]
    assert "reboot 2 of 2" in plan_node_step(verdict("UNHEALTHY", "REBOOT"), INITIAL, 1, 2, False)[1]
    assert plan_node_step(verdict("UNHEALTHY", "REBOOT"), INITIAL, 0, 2, True)[1].startswith("dry run: would reboot")


def test_inconclusive_after_reboot_is_rechecked_not_released_as_repaired() -> None:
    assert plan_node_step(verdict("INCONCLUSIVE"), AFTER_REBOOT, 1, 5, False)[0] == NodeStep.RECHECK


# ---- decide_node_lock ---------------------------------------------------------------------------
FAILURE_AT = "2026-11-20T03:14:27.391000+00:00"


def node_state(**fields: Any) -> dict[str, Any]:
    return {"nodeId": "i-0a1b2c3d4e5f60718", "recordKey": "STATE", **fields}


def test_lock_no_row_acquired() -> None:
    assert decide_node_lock(None, ME, FAILURE_AT, 0, 3) == (LockOutcome.ACQUIRED, None)


def test_lock_quarantined_done() -> None:
    state = node_state(status="QUARANTINED", reason="DCGM says the GPU must be replaced", updatedAt="2026-11-19")
    outcome, result = decide_node_lock(state, ME, FAILURE_AT, 0, 3)
    assert outcome == LockOutcome.DONE
    assert result is not None
    assert result.outcome == NodeOutcome.QUARANTINED
    assert "must be replaced" in result.reason


def test_lock_held_by_other_wait_then_busy() -> None:
    state = node_state(status="CHECKING", lockOwner=OTHER)
    assert decide_node_lock(state, ME, FAILURE_AT, 2, 3) == (LockOutcome.WAIT, None)
    outcome, result = decide_node_lock(state, ME, FAILURE_AT, 3, 3)
    assert outcome == LockOutcome.DONE
    assert result is not None
    assert result.outcome == NodeOutcome.BUSY
    assert result.handled_by == OTHER


def test_lock_reuses_other_healthy_outcome_checked_after_failure() -> None:
    state = node_state(
        status="HEALTHY", lastOutcome="REPAIRED", lastCheckedAt="2026-11-20T03:20:00+00:00", lastCheckedBy=OTHER
    )
    outcome, result = decide_node_lock(state, ME, FAILURE_AT, 0, 3)
    assert outcome == LockOutcome.DONE
    assert result is not None
    assert result.outcome == NodeOutcome.REPAIRED
    assert result.handled_by == OTHER


def test_lock_does_not_reuse_check_from_before_failure() -> None:
    state = node_state(status="HEALTHY", lastCheckedAt="2026-11-20T03:00:00+00:00", lastCheckedBy=OTHER)
    assert decide_node_lock(state, ME, FAILURE_AT, 0, 3) == (LockOutcome.ACQUIRED, None)


def test_lock_does_not_reuse_non_healthy_outcome() -> None:
    state = node_state(status="SUSPECT", lastCheckedAt="2026-11-20T03:20:00+00:00", lastCheckedBy=OTHER)
    assert decide_node_lock(state, ME, FAILURE_AT, 0, 3) == (LockOutcome.ACQUIRED, None)


def test_lock_own_lock_acquired() -> None:
    state = node_state(status="CHECKING", lockOwner=ME, lastCheckedAt="2026-11-20T03:20:00+00:00", lastCheckedBy=ME)
    assert decide_node_lock(state, ME, FAILURE_AT, 0, 3) == (LockOutcome.ACQUIRED, None)


# ---- decide_job ---------------------------------------------------------------------------------
def result(outcome: str, node: str = "i-0a1b2c3d4e5f60718") -> NodeResult:
    return NodeResult(node_id=node, outcome=NodeOutcome(outcome), reason="test")


def test_job_all_healthy_fails_without_restart() -> None:
    kind, reason = decide_job([result("HEALTHY"), result("HEALTHY", "i-2")], 0, 3, False, False)
    assert kind == JobOutcomeKind.FAILED
    assert "application" in reason


def test_job_all_healthy_restarts_when_configured() -> None:
    assert decide_job([result("HEALTHY")], 0, 3, True, False)[0] == JobOutcomeKind.RESTARTED


@pytest.mark.parametrize("outcome", ["REPAIRED", "QUARANTINED"])
def test_job_gpu_fault_handled_restarts(outcome: str) -> None:
    assert decide_job([result(outcome), result("HEALTHY", "i-2")], 0, 3, False, False)[0] == JobOutcomeKind.RESTARTED


def test_job_budget_exhausted_fails() -> None:
    kind, reason = decide_job([result("REPAIRED")], 3, 3, False, False)
    assert kind == JobOutcomeKind.FAILED
    assert "budget exhausted (3 of 3)" in reason


@pytest.mark.parametrize("outcome", ["SUSPECT", "BUSY", "LOST", "UNCHECKED"])
def test_job_unresolved_only_fails(outcome: str) -> None:
    kind, reason = decide_job([result(outcome), result("HEALTHY", "i-2")], 0, 3, True, False)
    assert kind == JobOutcomeKind.FAILED
    assert "i-0a1b2c3d4e5f60718" in reason


def test_job_with_a_node_held_by_the_breaker_restarts_elsewhere() -> None:
    kind, _ = decide_job([result("HELD")], 0, 3, False, False)
    assert kind == JobOutcomeKind.RESTARTED


def test_dry_run_does_not_call_an_unplaceable_check_suspect() -> None:
    # In a dry run the job is not stopped, so its GPUs are busy and the check cannot run: nothing was observed.
    second = CheckPlan(phase="INITIAL", inconclusive_checks=1)
    step, reason = plan_node_step(verdict("INCONCLUSIVE"), second, 0, 2, True)
    assert step == NodeStep.DRY_RUN
    assert "nothing observed" in reason
    assert plan_node_step(verdict("INCONCLUSIVE"), second, 0, 2, False)[0] == NodeStep.SUSPECT


def test_lock_of_a_dead_owner_is_acquired() -> None:
    state = node_state(lockOwner=OTHER, status="REBOOTING")
    assert decide_node_lock(state, ME, None, 0, 30, owner_running=False) == (LockOutcome.ACQUIRED, None)
    assert decide_node_lock(state, ME, None, 0, 30, owner_running=True) == (LockOutcome.WAIT, None)


def test_node_held_by_the_breaker_is_left_to_a_human() -> None:
    outcome, result_ = decide_node_lock(node_state(status="HELD", reason="fleet breaker open"), ME, None, 0, 30)
    assert outcome == LockOutcome.DONE
    assert result_ is not None
    assert result_.outcome == NodeOutcome.HELD


def test_job_service_managed() -> None:
    assert decide_job([result("REPAIRED")], 0, 3, False, True)[0] == JobOutcomeKind.SERVICE_RESTARTS


# ---- reboots_in_window --------------------------------------------------------------------------
def test_reboots_in_window_counts_only_recent() -> None:
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    times = [(now - timedelta(hours=h)).isoformat() for h in (1, 23, 25, 48)]
    assert reboots_in_window(times, now, 24) == 2
    assert reboots_in_window([], now, 24) == 0
