"""The step Lambdas' configuration, read once from the environment the stack (or the simulator) sets.

Names are the configuration names of infra/config.py, so one setting has one name everywhere.
"""

from __future__ import annotations

import os
from datetime import timedelta
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator

# StopTask sends SIGTERM; ECS sends SIGKILL after the container's stopTimeout: 30 s by default, on EC2 whatever the
# task definition or the agent's ECS_CONTAINER_STOP_TIMEOUT says (ECS API reference, ContainerDefinition
# stopTimeout). So the workflow polls DescribeTasks every TASK_STOP_POLL_SECONDS until the job's tasks are STOPPED,
# at most TASK_STOP_POLL_MAX_ATTEMPTS times (5 minutes); a check placed while GPUs are still held fails to place
# and ends INCONCLUSIVE, never in a repair.
TASK_STOP_POLL_SECONDS = 10
TASK_STOP_POLL_MAX_ATTEMPTS = 30
# GPU reset over SSM Run Command: poll the invocation every GPU_RESET_POLL_SECONDS, at most
# GPU_RESET_POLL_MAX_ATTEMPTS times (nvidia-smi --gpu-reset takes seconds; 5 minutes is a generous bound).
GPU_RESET_POLL_SECONDS = 10
GPU_RESET_POLL_MAX_ATTEMPTS = 30
# Wait before re-checking after an inconclusive check: long enough for a task that still held the GPUs to be
# SIGKILLed (its stopTimeout) and for a stale check of a dead execution to finish its level-2 run.
RECHECK_WAIT_SECONDS = 120


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    task_table_name: str = Field(alias="TASK_TABLE_NAME")
    job_table_name: str = Field(alias="JOB_TABLE_NAME")
    node_table_name: str = Field(alias="NODE_TABLE_NAME")
    ecs_cluster_name: str = Field(alias="ECS_CLUSTER_NAME")
    job_key: str = Field("group", alias="JOB_KEY")
    dcgm_diag_level: int = Field(2, alias="DCGM_DIAG_LEVEL", ge=1, le=4)
    dcgm_timeout_seconds: int = Field(900, alias="DCGM_TIMEOUT_SECONDS", gt=0)
    dcgm_container_name: str = Field("dcgm-check", alias="DCGM_CONTAINER_NAME")
    dcgm_task_family: str = Field("gpu-recovery-dcgm-check", alias="DCGM_TASK_FAMILY")
    max_reboots_per_node: int = Field(2, alias="MAX_REBOOTS_PER_NODE", ge=0)
    reboot_window_hours: int = Field(24, alias="REBOOT_WINDOW_HOURS", gt=0)
    max_restarts_per_job: int = Field(3, alias="MAX_RESTARTS_PER_JOB", ge=0)
    reboot_timeout_seconds: int = Field(1200, alias="REBOOT_TIMEOUT_SECONDS", gt=0)
    # "p5=1800,p4d=1200" in the environment (infra/config.py validates it).
    reboot_timeout_seconds_by_family: dict[str, int] = Field(
        default_factory=dict, alias="REBOOT_TIMEOUT_SECONDS_BY_FAMILY"
    )
    node_lock_wait_seconds: int = Field(60, alias="NODE_LOCK_WAIT_SECONDS", gt=0)
    node_lock_max_waits: int = Field(30, alias="NODE_LOCK_MAX_WAITS", gt=0)
    node_check_concurrency: int = Field(8, alias="NODE_CHECK_CONCURRENCY", gt=0)
    max_job_nodes: int = Field(16, alias="MAX_JOB_NODES", gt=0)
    dry_run: bool = Field(False, alias="DRY_RUN")
    terminate_quarantined: bool = Field(False, alias="TERMINATE_QUARANTINED")
    restart_on_healthy: bool = Field(False, alias="RESTART_ON_HEALTHY")
    gpu_reset_enabled: bool = Field(False, alias="GPU_RESET_ENABLED")
    max_nodes_in_repair_percent: int = Field(25, alias="MAX_NODES_IN_REPAIR_PERCENT", ge=1, le=100)
    history_ttl_days: int = Field(90, alias="HISTORY_TTL_DAYS", gt=0)
    # Only CleanupExecution publishes itself (the state machine publishes for the steps).
    notification_topic_arn: str = Field("", alias="NOTIFICATION_TOPIC_ARN")

    @field_validator("reboot_timeout_seconds_by_family", mode="before")
    @classmethod
    def _family_pairs(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        return {family: seconds for family, _, seconds in (pair.partition("=") for pair in value.split(",") if pair)}

    def reboot_timeout(self, instance_type: str | None) -> int:
        """How long a node of this instance type may take to come back from a reboot: its family's entry (the
        type's part before the dot, e.g. p5 of p5.48xlarge), else REBOOT_TIMEOUT_SECONDS."""
        family = (instance_type or "").partition(".")[0]
        return self.reboot_timeout_seconds_by_family.get(family, self.reboot_timeout_seconds)

    @field_validator("job_key")
    @classmethod
    def _job_key_form(cls, value: str) -> str:
        if value in ("group", "startedBy") or (value.startswith("tag:") and len(value) > len("tag:")):
            return value
        raise ValueError("JOB_KEY must be 'group', 'startedBy' or 'tag:<TagKey>'")

    def repair_lease(self) -> timedelta:
        """How long a fleet-breaker repair slot is held if its execution never gives it back (it crashed): the
        longest a repair can take: a check, a GPU reset and every poll of it, its re-check, the longest reboot
        timeout and the re-check after the reboot."""
        return timedelta(
            seconds=3 * self.dcgm_timeout_seconds
            + GPU_RESET_POLL_SECONDS * GPU_RESET_POLL_MAX_ATTEMPTS
            + max([self.reboot_timeout_seconds, *self.reboot_timeout_seconds_by_family.values()])
        )

    def workflow_settings(self) -> dict[str, object]:
        """The values the state machine reads with *Path fields (a file definition cannot hold numbers
        from configuration without breaking its JSON)."""
        return {
            "diagLevel": str(self.dcgm_diag_level),
            "dcgmTimeoutSeconds": self.dcgm_timeout_seconds,
            "nodeLockWaitSeconds": self.node_lock_wait_seconds,
            "nodeCheckConcurrency": self.node_check_concurrency,
            "taskStopPollSeconds": TASK_STOP_POLL_SECONDS,
            "taskStopPollMaxAttempts": TASK_STOP_POLL_MAX_ATTEMPTS,
            "terminateQuarantined": self.terminate_quarantined,
            "gpuResetPollSeconds": GPU_RESET_POLL_SECONDS,
            "gpuResetPollMaxAttempts": GPU_RESET_POLL_MAX_ATTEMPTS,
            "recheckWaitSeconds": RECHECK_WAIT_SECONDS,
        }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.model_validate(dict(os.environ))
