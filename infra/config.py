"""Deployment settings for ECS GPU Recovery.

Every setting is read with this precedence: CDK context (``cdk synth -c NAME=value``) > environment variable
``NAME`` > the default below. The names are the same everywhere: context key, environment variable and (for the
settings the step Lambdas need) the Lambda environment variable.

This module must stay importable without ``aws_cdk``: the local simulator builds the Lambda environment from it.
The settings the step Lambdas read are declared once, in recovery.settings.StepSettings (inside the Lambda
asset, so a step reads exactly what this writes); Config adds the deployment's own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, TypeAdapter, ValidationError

import gpu_recovery  # noqa: F401 - puts functions/ (the Lambda asset root) on sys.path for `recovery`
from infra.history_budget import GPU_RESET_POLLS, HISTORY_EVENT_LIMIT, worst_case_events
from recovery.settings import DCGM_TASK_FAMILY, StepSettings, env_value, integer_setting, setting

# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy); "never expire" is deliberately not
# offered: the stack's log groups are operational logs, not the audit trail (that lives in DynamoDB).
LOG_RETENTION_VALUES = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip

TASK_DEFINITION_ARN_RE = r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition/[A-Za-z0-9_-]{1,255}:\d+$"

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


class ConfigError(ValueError):
    """A setting has a value we refuse to deploy; the message is one line meant for the operator."""


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _valid(adapter: TypeAdapter[Any], value: Any) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


class Config(StepSettings):
    """The validated settings: the step Lambdas' (StepSettings) and the deployment's. Field names are the variable
    names (context key = env var = Lambda env var)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    # --- the deployment's own settings (the step Lambdas' are recovery.settings.StepSettings, inherited) ---
    DCGM_HEALTH_CHECK_TASK: str = setting(
        "", "empty, or arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>",
        "DCGM check task definition to use; empty = the stack creates one",
        pattern=rf"^$|{TASK_DEFINITION_ARN_RE}",
    )  # fmt: skip
    LAMBDA_TIMEOUT_SECONDS: int = integer_setting(120, "timeout of each step Lambda", ge=1, le=900)
    LAMBDA_MEMORY_SIZE: int = integer_setting(512, "memory of each step Lambda (MB)", ge=128, le=10240, suffix=" (MB)")
    SNS_TOPIC_NAME: str = setting(
        "ecs-gpu-recovery-notifications", "an SNS topic name: 1-256 of A-Z a-z 0-9 _ -",
        "notification topic name", pattern=r"^[A-Za-z0-9_-]{1,256}$",
    )  # fmt: skip
    SNS_TOPIC_DISPLAY_NAME: str = setting(
        "GPU Training Job Notifications", "1-100 characters", "notification topic display name (email sender name)",
        min_length=1, max_length=100,
    )  # fmt: skip
    NOTIFICATION_EMAIL: str = setting(
        "", "empty, or an email address", "subscribe this address to the topic (confirm the email AWS sends)",
        pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$",
    )  # fmt: skip
    DCGM_IMAGE: str = setting(
        "nvcr.io/nvidia/cloud-native/dcgm:4.2.3-1-ubuntu22.04", "a container image reference (no spaces)",
        "image of the DCGM check task the stack creates", pattern=r"^\S{1,1024}$",
    )  # fmt: skip
    DCGM_GPU_COUNT: int = integer_setting(
        8, "GPUs the check task reserves: all GPUs of the instance type (g5/g6 single-GPU fleets set 1)", ge=1, le=16
    )
    DCGM_LOG_GROUP: str = setting(
        "", "empty, or a log group name: 1-512 of A-Z a-z 0-9 . - _ / #",
        "log group the check task writes to; empty = the one the stack creates (required with DCGM_HEALTH_CHECK_TASK)",
        pattern=r"^$|^[.\-_/#A-Za-z0-9]{1,512}$",
    )  # fmt: skip
    LOG_RETENTION_DAYS: int = setting(
        90, "one of " + ", ".join(str(v) for v in LOG_RETENTION_VALUES),
        "retention of every log group the stack creates",
    )  # fmt: skip
    JOB_TASK_ROLES: str = setting(
        "gpu-job-*", "comma-separated IAM role names (with their path), each 1-512 of A-Z a-z 0-9 + = . @ _ - / "
        "and the wildcards * ?",
        "the task and execution roles of the jobs' task definitions: RestartJob may pass only these to ECS "
        "(a deploy prerequisite; a job whose roles are not listed is not relaunched)",
        pattern=r"^[A-Za-z0-9+=.@_/*?-]{1,512}(,[A-Za-z0-9+=.@_/*?-]{1,512})*$",
    )  # fmt: skip
    MANAGED_NODE_TAG: str = setting(
        "ecs-gpu-recovery=managed", "<key>=<value>: a tag key of 1-128 (not aws:...) and a value of 0-256 of "
        "A-Z a-z 0-9 space _ . : / = + @ -",
        "the EC2 tag every GPU instance of the cluster carries (a deploy prerequisite): the workflow may reboot, "
        "terminate and reset GPUs over SSM only on instances with it",
        pattern=r"^[A-Za-z0-9 _.:/+@-]{1,128}=[A-Za-z0-9 _.:/=+@-]{0,256}$",
    )  # fmt: skip
    REMOVAL_POLICY: Annotated[Literal["retain", "destroy"], BeforeValidator(_lower)] = setting(
        "retain", "retain or destroy", "what happens to tables, key and log groups when the stack is deleted"
    )
    LOG_LEVEL: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)] = setting(
        "INFO", "DEBUG, INFO, WARNING, ERROR or CRITICAL", "log level of the step Lambdas"
    )
    METRICS_NAMESPACE: str = setting(
        "EcsGpuRecovery", "1-255 of A-Z a-z 0-9 . - _ / # :", "CloudWatch metrics namespace of the step Lambdas",
        pattern=r"^[A-Za-z0-9.\-_/#:]{1,255}$",
    )  # fmt: skip
    STACK_NAME: str = setting(
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
        # Each family's timeout has REBOOT_TIMEOUT_SECONDS's bounds: checked against that field's own constraints.
        family_timeout = TypeAdapter(Annotated[int, *type(self).model_fields["REBOOT_TIMEOUT_SECONDS"].metadata])
        outside = [f"{f}={t}" for f, t in self.reboot_timeouts_by_family().items() if not _valid(family_timeout, t)]
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
        if self.MANAGED_NODE_TAG.lower().startswith("aws:"):
            # Tag keys starting aws: are AWS's own (EC2 user guide, "Tag restrictions"): no operator can set one.
            raise ConfigError(
                f"MANAGED_NODE_TAG={self.MANAGED_NODE_TAG!r} (from {sources.get('MANAGED_NODE_TAG', 'default')}) is "
                f"invalid; allowed: {self.allowed('MANAGED_NODE_TAG')}"
            )
        if self.DCGM_HEALTH_CHECK_TASK and not self.DCGM_LOG_GROUP:
            raise ConfigError(
                f"DCGM_LOG_GROUP={self.DCGM_LOG_GROUP!r} (from {sources.get('DCGM_LOG_GROUP', 'default')}) is invalid "
                f"because DCGM_HEALTH_CHECK_TASK is set (from {sources['DCGM_HEALTH_CHECK_TASK']}); "
                "allowed: the name of the log group that task's container logs to"
            )

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
    def job_task_roles(self) -> list[str]:
        """JOB_TASK_ROLES, one role name (with path) or pattern each."""
        return self.JOB_TASK_ROLES.split(",")

    @property
    def managed_node_tag(self) -> tuple[str, str]:
        """MANAGED_NODE_TAG as (key, value)."""
        key, _, value = self.MANAGED_NODE_TAG.partition("=")
        return key, value

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
        """Environment of every step Lambda: every StepSettings field, and what the stack derives (the stack adds
        DCGM_LOG_GROUP with the real log group name)."""
        env = {name: env_value(getattr(self, name)) for name in StepSettings.model_fields}
        env["DCGM_TASK_FAMILY"] = self.dcgm_task_family
        env["POWERTOOLS_SERVICE_NAME"] = POWERTOOLS_SERVICE_NAME
        env["POWERTOOLS_LOG_LEVEL"] = self.LOG_LEVEL
        env["POWERTOOLS_METRICS_NAMESPACE"] = self.METRICS_NAMESPACE
        return env


SETTINGS_DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration-table.md"


def _cell(text: str) -> str:
    # Markdown reads <TagKey> as an HTML tag and | as a column break.
    return text.replace("<", "\\<").replace("|", "\\|")


def settings_document() -> str:
    """docs/configuration-table.md: every setting with its default, what is allowed and its meaning, from the
    fields themselves (`make generated`; a test fails when the file is stale)."""
    lines = [
        "# Settings",
        "",
        "Generated from `recovery.settings.StepSettings` and `infra.config.Config` by `make generated`; do not edit.",
        "Precedence and the rules behind each bound: [configuration.md](configuration.md).",
    ]
    step = set(StepSettings.model_fields)
    for title, names in (
        ("Read by the step Lambdas (also their environment variables)", [n for n in Config.names() if n in step]),
        ("Used by the deployment only", [n for n in Config.names() if n not in step]),
    ):
        lines += ["", f"## {title}", "", "| Variable | Default | Allowed | Meaning |", "|---|---|---|---|"]
        for name in names:
            field = Config.model_fields[name]
            default = env_value(field.default)
            shown = f"`{default}`" if default else '`""` (empty)'
            lines.append(f"| `{name}` | {shown} | {_cell(Config.allowed(name))} | {_cell(field.description or '')} |")
    return "\n".join(lines) + "\n"
