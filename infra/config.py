"""Deployment settings for ECS GPU Recovery.

Every setting is read with this precedence: CDK context (``cdk synth -c NAME=value``) > environment variable
``NAME`` > the default below. The names are the same everywhere: context key, environment variable and (for the
settings the step Lambdas need) the Lambda environment variable.

This module must stay importable without ``aws_cdk``: the local simulator builds the Lambda environment from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from infra.history_budget import GPU_RESET_POLLS, HISTORY_EVENT_LIMIT, worst_case_events

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy); "never expire" is deliberately not
# offered: the stack's log groups are operational logs, not the audit trail (that lives in DynamoDB).
LOG_RETENTION_VALUES = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

TASK_DEFINITION_ARN_RE = r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition/[A-Za-z0-9_-]{1,255}:\d+$"

DCGM_TASK_FAMILY = "gpu-recovery-dcgm-check"
# The official public Powertools layer, pinned to the exact version in pyproject.toml. Powertools publishes one
# public SSM parameter per release, runtime and architecture whose value is the regional layer ARN;
# CloudFormation resolves it at deploy time (no lookup at synth). The layer carries the tracer and parser extras
# (aws-xray-sdk, pydantic v2) and leaves out boto3, which the runtime provides. (Here, not in infra/lambdas.py,
# because `gpu-recovery doctor` checks it without importing CDK.)
POWERTOOLS_VERSION = "3.37.0"
POWERTOOLS_LAYER_PARAMETER = f"/aws/service/powertools/python/x86_64/python3.12/{POWERTOOLS_VERSION}"
# The least DCGM_TIMEOUT_SECONDS each dcgmi diag run level fits in. NVIDIA's dcgmi-diag reference: level 1
# "normally lasting seconds", 2 "approximately two minutes", 3 "approximately 15 minutes", 4 "extended, longer";
# the DCGM diagnostics guide's older table gave level 4 one to two hours. The check also pulls the image and starts
# nv-hostengine first, so each bound is about twice the documented run.
DCGM_MIN_TIMEOUT_BY_LEVEL = {1: 60, 2: 300, 3: 1800, 4: 7200}
POWERTOOLS_SERVICE_NAME = "ecs-gpu-recovery"

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class ConfigError(ValueError):
    """A setting has a value we refuse to deploy; the message is one line meant for the operator."""


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


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


Bool = Annotated[bool, BeforeValidator(_parse_bool)]


def _setting(default: Any, allowed: str, meaning: str, **constraints: Any) -> Any:
    return Field(default, description=meaning, json_schema_extra={"allowed": allowed}, **constraints)


def _table_name(default: str, meaning: str) -> Any:
    return _setting(
        default, "a DynamoDB table name: 3-255 of A-Z a-z 0-9 _ . -", meaning, pattern=r"^[A-Za-z0-9_.-]{3,255}$"
    )


class Config(BaseModel):
    """The validated settings. Field names are the variable names (context key = env var = Lambda env var)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    # --- names promised by the original deployment guide ---
    TASK_TABLE_NAME: str = _table_name("ecs_task", "DynamoDB table: one item per ECS task")
    JOB_TABLE_NAME: str = _table_name("ecs_job", "DynamoDB table: one item per job")
    NODE_TABLE_NAME: str = _table_name("ecs_node", "DynamoDB table: current state and history per GPU node")
    ECS_CLUSTER_NAME: str = _setting(
        "gpu-cluster", "an ECS cluster name: 1-255 of A-Z a-z 0-9 _ -",
        "the ECS cluster whose stopped tasks are watched and repaired",
        pattern=r"^[A-Za-z0-9_-]{1,255}$",
    )  # fmt: skip
    DCGM_HEALTH_CHECK_TASK: str = _setting(
        "", "empty, or arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>",
        "DCGM check task definition to use; empty = the stack creates one",
        pattern=rf"^$|{TASK_DEFINITION_ARN_RE}",
    )  # fmt: skip
    LAMBDA_TIMEOUT_SECONDS: int = _setting(120, "an integer from 1 to 900", "timeout of each step Lambda", ge=1, le=900)
    LAMBDA_MEMORY_SIZE: int = _setting(
        512, "an integer from 128 to 10240 (MB)", "memory of each step Lambda (MB)", ge=128, le=10240
    )
    SNS_TOPIC_NAME: str = _setting(
        "ecs-gpu-recovery-notifications", "an SNS topic name: 1-256 of A-Z a-z 0-9 _ -",
        "notification topic name", pattern=r"^[A-Za-z0-9_-]{1,256}$",
    )  # fmt: skip
    SNS_TOPIC_DISPLAY_NAME: str = _setting(
        "GPU Training Job Notifications", "1-100 characters", "notification topic display name (email sender name)",
        min_length=1, max_length=100,
    )  # fmt: skip
    # --- added by this project ---
    NOTIFICATION_EMAIL: str = _setting(
        "", "empty, or an email address", "subscribe this address to the topic (confirm the email AWS sends)",
        pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$",
    )  # fmt: skip
    DCGM_IMAGE: str = _setting(
        "nvcr.io/nvidia/cloud-native/dcgm:4.2.3-1-ubuntu22.04", "a container image reference (no spaces)",
        "image of the DCGM check task the stack creates", pattern=r"^\S{1,1024}$",
    )  # fmt: skip
    DCGM_GPU_COUNT: int = _setting(
        8, "an integer from 1 to 16",
        "GPUs the check task reserves: all GPUs of the instance type (g5/g6 single-GPU fleets set 1)",
        ge=1, le=16,
    )  # fmt: skip
    DCGM_DIAG_LEVEL: int = _setting(2, "an integer from 1 to 4", "dcgmi diag run level (-r)", ge=1, le=4)
    DCGM_TIMEOUT_SECONDS: int = _setting(
        900, "an integer from 60 to 86400", "how long the workflow waits for one DCGM check", ge=60, le=86400
    )
    DCGM_CONTAINER_NAME: str = _setting(
        "dcgm-check", "a container name: 1-255 of A-Z a-z 0-9 _ -", "name of the check container in the task",
        pattern=r"^[A-Za-z0-9_-]{1,255}$",
    )  # fmt: skip
    DCGM_LOG_GROUP: str = _setting(
        "", "empty, or a log group name: 1-512 of A-Z a-z 0-9 . - _ / #",
        "log group the check task writes to; empty = the one the stack creates (required with DCGM_HEALTH_CHECK_TASK)",
        pattern=r"^$|^[.\-_/#A-Za-z0-9]{1,512}$",
    )  # fmt: skip
    LOG_RETENTION_DAYS: int = _setting(
        90, "one of " + ", ".join(str(v) for v in LOG_RETENTION_VALUES),
        "retention of every log group the stack creates",
    )  # fmt: skip
    HISTORY_TTL_DAYS: int = _setting(
        90,
        "an integer from 1 to 3650",
        "node history rows expire (DynamoDB TTL) after this many days",
        ge=1,
        le=3650,
    )
    JOB_KEY: str = _setting(
        "group", "group, startedBy or tag:<TagKey>", "which task attribute groups tasks into one job",
        pattern=r"^(group|startedBy|tag:[A-Za-z0-9 _.:/=+@-]{1,128})$",
    )  # fmt: skip
    MAX_REBOOTS_PER_NODE: int = _setting(
        2,
        "an integer from 0 to 10",
        "reboots per node within REBOOT_WINDOW_HOURS before quarantine",
        ge=0,
        le=10,
    )
    REBOOT_WINDOW_HOURS: int = _setting(24, "an integer from 1 to 720", "window for MAX_REBOOTS_PER_NODE", ge=1, le=720)
    MAX_NODES_IN_REPAIR_PERCENT: int = _setting(
        25, "an integer from 1 to 100",
        "fleet breaker: most of the cluster's instances rebooted or reset at once; beyond it a node is quarantined",
        ge=1, le=100,
    )  # fmt: skip
    MAX_RESTARTS_PER_JOB: int = _setting(
        3, "an integer from 0 to 20", "automatic restarts of one job before giving up", ge=0, le=20
    )
    REBOOT_TIMEOUT_SECONDS: int = _setting(
        1200, "an integer from 60 to 7200",
        "how long a rebooted node's ECS agent may take to reconnect before the node is quarantined",
        ge=60, le=7200,
    )  # fmt: skip
    REBOOT_TIMEOUT_SECONDS_BY_FAMILY: str = _setting(
        "", "empty, or <family>=<seconds> pairs separated by commas (e.g. p5=1800,p4d=1200), each 60 to 7200",
        "REBOOT_TIMEOUT_SECONDS for instance types of these families (the part of the type before the dot)",
        pattern=r"^$|^[a-z0-9-]+=\d+(,[a-z0-9-]+=\d+)*$",
    )  # fmt: skip
    NODE_LOCK_WAIT_SECONDS: int = _setting(
        60,
        "an integer from 5 to 3600",
        "wait between attempts to lock a node another recovery holds",
        ge=5,
        le=3600,
    )
    NODE_LOCK_MAX_WAITS: int = _setting(
        30, "an integer from 1 to 500", "lock attempts before giving up on a node", ge=1, le=500
    )
    MAX_JOB_NODES: int = _setting(
        16, "an integer from 1 to 1000 whose worst-case recovery fits Step Functions' 25,000 history events",
        "most nodes one recovered job may span; a larger job is not recovered (an ERROR alert says why)",
        ge=1, le=1000,
    )  # fmt: skip
    NODE_CHECK_CONCURRENCY: int = _setting(
        8, "an integer from 1 to 40", "nodes of one job checked in parallel (Map MaxConcurrency)", ge=1, le=40
    )
    DRY_RUN: Bool = _setting(False, "true/false/1/0/yes/no", "same decisions and notifications, no destructive call")
    TERMINATE_QUARANTINED: Bool = _setting(
        False, "true/false/1/0/yes/no", "terminate quarantined instances (ASG replaces them); else only drain"
    )
    RESTART_ON_HEALTHY: Bool = _setting(
        False, "true/false/1/0/yes/no", "restart the job even when every node checks healthy"
    )
    GPU_RESET_ENABLED: Bool = _setting(
        False, "true/false/1/0/yes/no",
        "try nvidia-smi --gpu-reset over SSM Run Command before rebooting, where the diagnosis says a reset clears it",
    )  # fmt: skip
    REMOVAL_POLICY: Annotated[Literal["retain", "destroy"], BeforeValidator(_lower)] = _setting(
        "retain", "retain or destroy", "what happens to tables, key and log groups when the stack is deleted"
    )
    LOG_LEVEL: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)] = _setting(
        "INFO", "DEBUG, INFO, WARNING, ERROR or CRITICAL", "log level of the step Lambdas"
    )
    METRICS_NAMESPACE: str = _setting(
        "EcsGpuRecovery", "1-255 of A-Z a-z 0-9 . - _ / # :", "CloudWatch metrics namespace of the step Lambdas",
        pattern=r"^[A-Za-z0-9.\-_/#:]{1,255}$",
    )  # fmt: skip
    STACK_NAME: str = _setting(
        "EcsGpuRecoveryStack", "a CloudFormation stack name: a letter, then up to 127 of A-Z a-z 0-9 -",
        "CloudFormation stack name", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,127}$",
    )  # fmt: skip

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(cls.model_fields)

    @classmethod
    def allowed(cls, name: str) -> str:
        extra = cls.model_fields[name].json_schema_extra
        assert isinstance(extra, dict)
        return str(extra["allowed"])

    @classmethod
    def load(cls, context: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Config:
        """Resolve every setting (context > env > default) and validate all of them, or raise ConfigError."""
        context = context or {}
        env = env or {}
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name in cls.names():
            if context.get(name) is not None:
                values[name], sources[name] = context[name], "context"
            elif name in env:
                values[name], sources[name] = env[name], "env"
        try:
            config = cls(**values)
        except ValidationError as err:
            first = err.errors()[0]
            name = str(first["loc"][0])
            raise ConfigError(
                f"{name}={values.get(name)!r} (from {sources.get(name, 'default')}) is invalid; "
                f"allowed: {cls.allowed(name)}"
            ) from None
        config._check_combinations(values, sources)
        return config

    def _check_combinations(self, values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
        if self.LOG_RETENTION_DAYS not in LOG_RETENTION_VALUES:
            raise ConfigError(
                f"LOG_RETENTION_DAYS={values.get('LOG_RETENTION_DAYS')!r} "
                f"(from {sources.get('LOG_RETENTION_DAYS', 'default')}) is invalid; "
                f"allowed: {self.allowed('LOG_RETENTION_DAYS')}"
            )
        outside = [f"{f}={t}" for f, t in self.reboot_timeouts_by_family().items() if not 60 <= t <= 7200]
        if outside:
            raise ConfigError(
                f"REBOOT_TIMEOUT_SECONDS_BY_FAMILY={self.REBOOT_TIMEOUT_SECONDS_BY_FAMILY!r} "
                f"(from {sources.get('REBOOT_TIMEOUT_SECONDS_BY_FAMILY', 'default')}) is invalid at {outside[0]}; "
                f"allowed: {self.allowed('REBOOT_TIMEOUT_SECONDS_BY_FAMILY')}"
            )
        worst = self.worst_case_history_events()
        if worst > HISTORY_EVENT_LIMIT:
            bounds = ("MAX_JOB_NODES", "NODE_LOCK_MAX_WAITS", "GPU_RESET_ENABLED")
            given = ", ".join(f"{n}={getattr(self, n)!r} (from {sources.get(n, 'default')})" for n in bounds)
            raise ConfigError(
                f"{given} allow a recovery of up to {worst} execution history events; Step Functions keeps at most "
                f"{HISTORY_EVENT_LIMIT} per execution: lower MAX_JOB_NODES or the lock/poll bounds"
            )
        level, timeout = self.DCGM_DIAG_LEVEL, self.DCGM_TIMEOUT_SECONDS
        least = DCGM_MIN_TIMEOUT_BY_LEVEL[level]
        if timeout < least:
            raise ConfigError(
                f"DCGM_TIMEOUT_SECONDS={timeout} "
                f"(from {sources.get('DCGM_TIMEOUT_SECONDS', 'default')}) is invalid "
                f"because DCGM_DIAG_LEVEL={level} (from {sources.get('DCGM_DIAG_LEVEL', 'default')}) "
                f"runs longer; allowed: at least {least} for level {level}"
            )
        tables = ("TASK_TABLE_NAME", "JOB_TABLE_NAME", "NODE_TABLE_NAME")
        for first, second in ((a, b) for i, a in enumerate(tables) for b in tables[i + 1 :]):
            if getattr(self, first) == getattr(self, second):
                raise ConfigError(
                    f"{second}={getattr(self, second)!r} (from {sources.get(second, 'default')}) is invalid "
                    f"because {first} (from {sources.get(first, 'default')}) names the same table; "
                    "allowed: a name no other table of the stack has"
                )
        if self.DCGM_HEALTH_CHECK_TASK and not self.DCGM_LOG_GROUP:
            raise ConfigError(
                f"DCGM_LOG_GROUP={self.DCGM_LOG_GROUP!r} (from {sources.get('DCGM_LOG_GROUP', 'default')}) is invalid "
                f"because DCGM_HEALTH_CHECK_TASK is set (from {sources['DCGM_HEALTH_CHECK_TASK']}); "
                "allowed: the name of the log group that task's container logs to"
            )

    def reboot_timeouts_by_family(self) -> dict[str, int]:
        return reboot_timeouts_by_family(self.REBOOT_TIMEOUT_SECONDS_BY_FAMILY)

    def longest_reboot_timeout(self) -> int:
        return max([self.REBOOT_TIMEOUT_SECONDS, *self.reboot_timeouts_by_family().values()])

    def worst_case_history_events(self) -> int:
        """The longest recovery's history under these bounds (infra/history_budget.py)."""
        return worst_case_events(
            self.MAX_JOB_NODES,
            self.NODE_LOCK_MAX_WAITS,
            GPU_RESET_POLLS if self.GPU_RESET_ENABLED else 0,
        )

    def fixed_name_defaults(self) -> list[str]:
        """The settings that name account-wide resources (fixed physical names, kept on stack deletion) and are
        still at the seed's default: a second stack with another STACK_NAME would collide on them."""
        fixed = ("TASK_TABLE_NAME", "JOB_TABLE_NAME", "NODE_TABLE_NAME", "SNS_TOPIC_NAME")
        defaults = {name: field.default for name, field in type(self).model_fields.items()}
        stack_name = self.STACK_NAME
        if stack_name == defaults["STACK_NAME"]:
            return []
        return [name for name in fixed if getattr(self, name) == defaults[name]]

    @property
    def creates_dcgm_task(self) -> bool:
        return not self.DCGM_HEALTH_CHECK_TASK

    @property
    def dcgm_task_family(self) -> str:
        """Family of the check task definition (the one we create, or the one in DCGM_HEALTH_CHECK_TASK)."""
        if self.creates_dcgm_task:
            return DCGM_TASK_FAMILY
        match = re.search(r"task-definition/([^:]+):", self.DCGM_HEALTH_CHECK_TASK)
        assert match is not None  # guaranteed by the field pattern
        return match.group(1)

    def lambda_environment(self) -> dict[str, str]:
        """Environment of every step Lambda (the stack adds DCGM_LOG_GROUP with the real log group name)."""
        env = {
            name: _env_value(getattr(self, name))
            for name in (
                "TASK_TABLE_NAME", "JOB_TABLE_NAME", "NODE_TABLE_NAME", "ECS_CLUSTER_NAME", "JOB_KEY",
                "DCGM_DIAG_LEVEL", "DCGM_TIMEOUT_SECONDS", "DCGM_CONTAINER_NAME", "MAX_REBOOTS_PER_NODE",
                "REBOOT_WINDOW_HOURS", "MAX_RESTARTS_PER_JOB", "REBOOT_TIMEOUT_SECONDS",
                "REBOOT_TIMEOUT_SECONDS_BY_FAMILY", "NODE_LOCK_WAIT_SECONDS", "NODE_LOCK_MAX_WAITS",
                "NODE_CHECK_CONCURRENCY",
                "MAX_JOB_NODES",
                "DRY_RUN", "TERMINATE_QUARANTINED", "RESTART_ON_HEALTHY", "HISTORY_TTL_DAYS", "GPU_RESET_ENABLED",
                "MAX_NODES_IN_REPAIR_PERCENT",
            )
        }  # fmt: skip
        env["DCGM_TASK_FAMILY"] = self.dcgm_task_family
        env["POWERTOOLS_SERVICE_NAME"] = POWERTOOLS_SERVICE_NAME
        env["POWERTOOLS_LOG_LEVEL"] = self.LOG_LEVEL
        env["POWERTOOLS_METRICS_NAMESPACE"] = self.METRICS_NAMESPACE
        return env


def reboot_timeouts_by_family(text: str) -> dict[str, int]:
    """`p5=1800,p4d=1200` -> {"p5": 1800, "p4d": 1200} (the form the field pattern admits; also read by the
    step Lambdas' settings, which get the same string)."""
    pairs = [pair.partition("=") for pair in text.split(",") if pair]
    return {family: int(seconds) for family, _, seconds in pairs}


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
