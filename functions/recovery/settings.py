"""The settings the step Lambdas read, declared once: name (= environment variable = CDK context key), default,
what is allowed and what it means. CDK-free and inside the Lambda asset, so a step reads exactly what the stack
writes: infra/config.py extends StepSettings with the deployment's own settings, derives the Lambda environment
from StepSettings' fields, and docs/configuration-table.md is generated from both (`make generated`).
Adding a setting a step reads = one field here + its use."""

from __future__ import annotations

import os
from datetime import timedelta
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

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
# The family of the DCGM check task definition the stack creates.
DCGM_TASK_FAMILY = "gpu-recovery-dcgm-check"

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _parse_bool(value: Any) -> Any:
    # pydantic's lax bool also accepts on/off/t/f/y/n; we document and accept exactly true/false/1/0/yes/no.
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("not a boolean")


Bool = Annotated[bool, BeforeValidator(_parse_bool)]


def setting(default: Any, allowed: str, meaning: str, **constraints: Any) -> Any:
    """A setting's field: its default, `allowed` (the operator's words for its constraints) and its meaning."""
    return Field(default, description=meaning, json_schema_extra={"allowed": allowed}, **constraints)


def integer_setting(default: int, meaning: str, *, ge: int, le: int, suffix: str = "") -> Any:
    """An integer setting whose `allowed` words come from its bounds, so the two cannot drift apart."""
    return setting(default, f"an integer from {ge} to {le}{suffix}", meaning, ge=ge, le=le)


def _table_name(default: str, meaning: str) -> Any:
    return setting(
        default, "a DynamoDB table name: 3-255 of A-Z a-z 0-9 _ . -", meaning, pattern=r"^[A-Za-z0-9_.-]{3,255}$"
    )


def env_value(value: Any) -> str:
    """A setting as an environment variable spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class StepSettings(BaseModel):
    """The settings the step Lambdas read. Field names are the variable names (context key = env var = Lambda
    env var)."""

    # defer_build: a step Lambda validates Settings alone, at its first get_settings(); building StepSettings'
    # validator at import too cost a cold start about a quarter of a bare `import boto3` (docs/benchmarks.md).
    model_config = ConfigDict(frozen=True, strict=False, defer_build=True)

    TASK_TABLE_NAME: str = _table_name("ecs_task", "DynamoDB table: one item per ECS task")
    JOB_TABLE_NAME: str = _table_name("ecs_job", "DynamoDB table: one item per job")
    NODE_TABLE_NAME: str = _table_name("ecs_node", "DynamoDB table: current state and history per GPU node")
    ECS_CLUSTER_NAME: str = setting(
        "gpu-cluster", "an ECS cluster name: 1-255 of A-Z a-z 0-9 _ -",
        "the ECS cluster whose stopped tasks are watched and repaired",
        pattern=r"^[A-Za-z0-9_-]{1,255}$",
    )  # fmt: skip
    DCGM_DIAG_LEVEL: int = integer_setting(2, "dcgmi diag run level (-r)", ge=1, le=4)
    DCGM_TIMEOUT_SECONDS: int = integer_setting(900, "how long the workflow waits for one DCGM check", ge=60, le=86400)
    DCGM_CONTAINER_NAME: str = setting(
        "dcgm-check", "a container name: 1-255 of A-Z a-z 0-9 _ -", "name of the check container in the task",
        pattern=r"^[A-Za-z0-9_-]{1,255}$",
    )  # fmt: skip
    HISTORY_TTL_DAYS: int = integer_setting(
        90, "node history rows expire (DynamoDB TTL) after this many days", ge=1, le=3650
    )
    JOB_KEY: str = setting(
        "group", "group, startedBy or tag:<TagKey>", "which task attribute groups tasks into one job",
        pattern=r"^(group|startedBy|tag:[A-Za-z0-9 _.:/=+@-]{1,128})$",
    )  # fmt: skip
    MAX_REBOOTS_PER_NODE: int = integer_setting(
        2, "reboots per node within REBOOT_WINDOW_HOURS before quarantine", ge=0, le=10
    )
    REBOOT_WINDOW_HOURS: int = integer_setting(24, "window for MAX_REBOOTS_PER_NODE", ge=1, le=720)
    MAX_NODES_IN_REPAIR_PERCENT: int = integer_setting(
        25,
        "fleet breaker: most of the cluster's instances rebooted or reset at once; beyond it a node is quarantined",
        ge=1,
        le=100,
    )
    MAX_RESTARTS_PER_JOB: int = integer_setting(3, "automatic restarts of one job before giving up", ge=0, le=20)
    REBOOT_TIMEOUT_SECONDS: int = integer_setting(
        1200,
        "how long a rebooted node's ECS agent may take to reconnect before the node is quarantined",
        ge=60,
        le=7200,
    )
    REBOOT_TIMEOUT_SECONDS_BY_FAMILY: str = setting(
        "", "empty, or <family>=<seconds> pairs separated by commas (e.g. p5=1800,p4d=1200), each 60 to 7200",
        "REBOOT_TIMEOUT_SECONDS for instance types of these families (the part of the type before the dot)",
        pattern=r"^$|^[a-z0-9-]+=\d+(,[a-z0-9-]+=\d+)*$",
    )  # fmt: skip
    # Long enough for a task that still held the GPUs to be SIGKILLed and for a stale check of a dead execution to
    # finish. On EC2 a container's stopTimeout (else the agent's ECS_CONTAINER_STOP_TIMEOUT, 30 s by default) has
    # no documented maximum (ECS API reference, ContainerDefinition stopTimeout; Fargate's is 120 s), so a job
    # whose tasks flush checkpoints on SIGTERM needs this above its stopTimeout.
    RECHECK_WAIT_SECONDS: int = integer_setting(
        120,
        "wait before the one re-check after an inconclusive check; keep it above the job tasks' stopTimeout",
        ge=30,
        le=900,
    )
    NODE_LOCK_WAIT_SECONDS: int = integer_setting(
        60, "wait between attempts to lock a node another recovery holds", ge=5, le=3600
    )
    NODE_LOCK_MAX_WAITS: int = integer_setting(30, "lock attempts before giving up on a node", ge=1, le=500)
    MAX_JOB_NODES: int = integer_setting(
        16,
        "most nodes one recovered job may span; a larger job is not recovered (an ERROR alert says why)",
        ge=1,
        le=1000,
        suffix=" whose worst-case recovery fits Step Functions' 25,000 history events",
    )
    # 40: every node of a job at once, up to the most concurrent iterations an inline Map runs (Step Functions
    # developer guide, "Using Map state in Inline mode": "supports up to 40 concurrent iterations").
    NODE_CHECK_CONCURRENCY: int = integer_setting(
        40, "nodes of one job checked at once (Map MaxConcurrency; 40 is the inline Map's limit)", ge=1, le=40
    )
    DRY_RUN: Bool = setting(False, "true/false/1/0/yes/no", "same decisions and notifications, no destructive call")
    TERMINATE_QUARANTINED: Bool = setting(
        False, "true/false/1/0/yes/no", "terminate quarantined instances (ASG replaces them); else only drain"
    )
    RESTART_ON_HEALTHY: Bool = setting(
        False, "true/false/1/0/yes/no", "restart the job even when every node checks healthy"
    )
    GPU_RESET_ENABLED: Bool = setting(
        False, "true/false/1/0/yes/no",
        "try nvidia-smi --gpu-reset over SSM Run Command before rebooting, where the diagnosis says a reset clears it",
    )  # fmt: skip

    def reboot_timeouts_by_family(self) -> dict[str, int]:
        """`p5=1800,p4d=1200` -> {"p5": 1800, "p4d": 1200} (the form the field's pattern admits)."""
        pairs = [pair.partition("=") for pair in self.REBOOT_TIMEOUT_SECONDS_BY_FAMILY.split(",") if pair]
        return {family: int(seconds) for family, _, seconds in pairs}

    def reboot_timeout(self, instance_type: str | None) -> int:
        """How long a node of this instance type may take to come back from a reboot: its family's entry (the
        type's part before the dot, e.g. p5 of p5.48xlarge), else REBOOT_TIMEOUT_SECONDS."""
        family = (instance_type or "").partition(".")[0]
        return self.reboot_timeouts_by_family().get(family, self.REBOOT_TIMEOUT_SECONDS)

    def longest_reboot_timeout(self) -> int:
        return max([self.REBOOT_TIMEOUT_SECONDS, *self.reboot_timeouts_by_family().values()])

    @classmethod
    def default_text(cls, name: str) -> str:
        """A step setting's default as its environment variable spells it (the CLI's fallback)."""
        return env_value(cls.model_fields[name].default)


class Settings(StepSettings):
    """A step Lambda's configuration, read once from the environment the stack (or the simulator) sets: the step
    settings and what the stack derives for the steps."""

    DCGM_TASK_FAMILY: str = DCGM_TASK_FAMILY
    # Only CleanupExecution publishes itself (the state machine publishes for the steps).
    NOTIFICATION_TOPIC_ARN: str = ""

    def repair_lease(self) -> timedelta:
        """How long a fleet-breaker repair slot is held if its execution never gives it back (it crashed): the
        longest a repair can take: a check, a GPU reset and every poll of it, its re-check, the longest reboot
        timeout and the re-check after the reboot."""
        return timedelta(
            seconds=3 * self.DCGM_TIMEOUT_SECONDS
            + GPU_RESET_POLL_SECONDS * GPU_RESET_POLL_MAX_ATTEMPTS
            + self.longest_reboot_timeout()
        )

    def workflow_settings(self) -> dict[str, object]:
        """The values the state machine reads with *Path fields (a file definition cannot hold numbers
        from configuration without breaking its JSON)."""
        return {
            "diagLevel": str(self.DCGM_DIAG_LEVEL),
            "dcgmTimeoutSeconds": self.DCGM_TIMEOUT_SECONDS,
            "nodeLockWaitSeconds": self.NODE_LOCK_WAIT_SECONDS,
            "nodeCheckConcurrency": self.NODE_CHECK_CONCURRENCY,
            "taskStopPollSeconds": TASK_STOP_POLL_SECONDS,
            "taskStopPollMaxAttempts": TASK_STOP_POLL_MAX_ATTEMPTS,
            "terminateQuarantined": self.TERMINATE_QUARANTINED,
            "gpuResetPollSeconds": GPU_RESET_POLL_SECONDS,
            "gpuResetPollMaxAttempts": GPU_RESET_POLL_MAX_ATTEMPTS,
            "recheckWaitSeconds": self.RECHECK_WAIT_SECONDS,
        }


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.model_validate(dict(os.environ))
