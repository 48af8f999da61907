"""settings.py: the environment the stack sets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from recovery.settings import TASK_STOP_POLL_MAX_ATTEMPTS, TASK_STOP_POLL_SECONDS, Settings, get_settings

BASE = {"TASK_TABLE_NAME": "tasks", "JOB_TABLE_NAME": "jobs", "NODE_TABLE_NAME": "nodes", "ECS_CLUSTER_NAME": "c"}


def test_defaults() -> None:
    s = Settings.model_validate(BASE)
    assert (s.JOB_KEY, s.DCGM_DIAG_LEVEL, s.DRY_RUN, s.RESTART_ON_HEALTHY) == ("group", 2, False, False)


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("false", False), ("1", True), ("0", False)])
def test_booleans(raw: str, value: bool) -> None:
    s = Settings.model_validate(BASE | {"DRY_RUN": raw, "TERMINATE_QUARANTINED": raw, "RESTART_ON_HEALTHY": raw})
    assert (value, value, value) == (s.DRY_RUN, s.TERMINATE_QUARANTINED, s.RESTART_ON_HEALTHY)


@pytest.mark.parametrize(
    "bad",
    [
        {"DCGM_DIAG_LEVEL": "0"},
        {"DCGM_DIAG_LEVEL": "5"},
        {"DCGM_TIMEOUT_SECONDS": "0"},
        {"MAX_REBOOTS_PER_NODE": "-1"},
        {"REBOOT_TIMEOUT_SECONDS": "0"},
        {"DRY_RUN": "maybe"},
        {"JOB_KEY": "taskDefinition"},
        {"JOB_KEY": "tag:"},
    ],
)
def test_bad_values_raise(bad: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate(BASE | bad)


@pytest.mark.parametrize("key", ["group", "startedBy", "tag:training-job"])
def test_job_keys(key: str) -> None:
    assert key == Settings.model_validate(BASE | {"JOB_KEY": key}).JOB_KEY


def test_bounds_are_the_deployments() -> None:
    # One declaration: a value synth refuses (infra.config) is one a step refuses too.
    with pytest.raises(ValidationError, match="DCGM_TIMEOUT_SECONDS"):
        Settings.model_validate(BASE | {"DCGM_TIMEOUT_SECONDS": "59"})


def test_workflow_settings() -> None:
    s = Settings.model_validate(BASE | {"DCGM_DIAG_LEVEL": "3", "TERMINATE_QUARANTINED": "true"})
    ws = s.workflow_settings()
    assert set(ws) == {
        "diagLevel",
        "dcgmTimeoutSeconds",
        "nodeLockWaitSeconds",
        "nodeCheckConcurrency",
        "taskStopPollSeconds",
        "taskStopPollMaxAttempts",
        "terminateQuarantined",
        "gpuResetPollSeconds",
        "gpuResetPollMaxAttempts",
        "recheckWaitSeconds",
    }
    # The container environment override takes a string; the *Path fields take numbers.
    assert ws["diagLevel"] == "3"
    assert (ws["taskStopPollSeconds"], ws["taskStopPollMaxAttempts"]) == (
        TASK_STOP_POLL_SECONDS,
        TASK_STOP_POLL_MAX_ATTEMPTS,
    )
    assert all(type(ws[k]) is int for k in ws if k not in ("diagLevel", "terminateQuarantined"))
    assert ws["terminateQuarantined"] is True


def test_get_settings_reads_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_RESTARTS_PER_JOB", "7")
    get_settings.cache_clear()
    assert get_settings().MAX_RESTARTS_PER_JOB == 7


def test_gpu_reset_is_off_by_default() -> None:
    assert Settings.model_validate(BASE).GPU_RESET_ENABLED is False
    assert Settings.model_validate(BASE | {"GPU_RESET_ENABLED": "true"}).GPU_RESET_ENABLED is True


def test_repair_lease_covers_a_gpu_reset_before_the_reboot() -> None:
    # check (900) -> reset polls (300) -> check (900) -> the longest reboot timeout (1200) -> check (900)
    assert Settings.model_validate(BASE).repair_lease().total_seconds() == 3 * 900 + 300 + 1200
    longer = Settings.model_validate(BASE | {"REBOOT_TIMEOUT_SECONDS_BY_FAMILY": "p5=1800"})
    assert longer.repair_lease().total_seconds() == 3 * 900 + 300 + 1800


def test_reboot_timeout_by_instance_family() -> None:
    s = Settings.model_validate(
        BASE | {"REBOOT_TIMEOUT_SECONDS": "900", "REBOOT_TIMEOUT_SECONDS_BY_FAMILY": "p5=1800,p4d=1200"}
    )
    assert s.reboot_timeout("p5.48xlarge") == 1800
    assert s.reboot_timeout("p4d.24xlarge") == 1200
    # p4de is its own family, not p4d's; no instance type (an older record) takes the default.
    assert s.reboot_timeout("p4de.24xlarge") == 900
    assert s.reboot_timeout(None) == 900
