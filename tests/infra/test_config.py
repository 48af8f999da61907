"""infra.config: precedence, validation, the Lambda environment. Pure Python, no CDK."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.config import SETTINGS_DOC, Config, ConfigError, settings_document
from recovery.settings import Settings, StepSettings

ROOT = Path(__file__).resolve().parents[2]
ARN = "arn:aws:ecs:us-east-1:123456789012:task-definition/my-dcgm:7"


def test_defaults_are_the_seed_values() -> None:
    config = Config.load()
    assert config.TASK_TABLE_NAME == "ecs_task"
    assert config.JOB_TABLE_NAME == "ecs_job"
    assert config.NODE_TABLE_NAME == "ecs_node"
    assert config.ECS_CLUSTER_NAME == "gpu-cluster"
    assert config.DCGM_HEALTH_CHECK_TASK == ""
    assert (config.LAMBDA_TIMEOUT_SECONDS, config.LAMBDA_MEMORY_SIZE) == (120, 512)
    assert config.SNS_TOPIC_NAME == "ecs-gpu-recovery-notifications"
    assert config.SNS_TOPIC_DISPLAY_NAME == "GPU Training Job Notifications"
    assert config.REMOVAL_POLICY == "retain"


def test_env_overrides_default() -> None:
    config = Config.load(env={"LAMBDA_MEMORY_SIZE": "1024", "DRY_RUN": "yes", "JOB_KEY": "tag:TrainingJob"})
    assert config.LAMBDA_MEMORY_SIZE == 1024
    assert config.DRY_RUN is True
    assert config.JOB_KEY == "tag:TrainingJob"


def test_context_overrides_env() -> None:
    config = Config.load(
        context={"TASK_TABLE_NAME": "from_context", "LAMBDA_TIMEOUT_SECONDS": 300},
        env={"TASK_TABLE_NAME": "from_env", "JOB_TABLE_NAME": "job_from_env"},
    )
    assert config.TASK_TABLE_NAME == "from_context"
    assert config.JOB_TABLE_NAME == "job_from_env"
    assert config.LAMBDA_TIMEOUT_SECONDS == 300


@pytest.mark.parametrize("text", ["true", "TRUE", "1", "yes", "Yes"])
def test_true_spellings(text: str) -> None:
    assert Config.load(env={"TERMINATE_QUARANTINED": text}).TERMINATE_QUARANTINED is True


@pytest.mark.parametrize("text", ["false", "False", "0", "no", "NO"])
def test_false_spellings(text: str) -> None:
    assert Config.load(env={"RESTART_ON_HEALTHY": text}).RESTART_ON_HEALTHY is False


@pytest.mark.parametrize(
    ("name", "value", "allowed"),
    [
        ("LAMBDA_MEMORY_SIZE", "abc", "128 to 10240"),
        ("LAMBDA_MEMORY_SIZE", "64", "128 to 10240"),
        ("LAMBDA_TIMEOUT_SECONDS", "901", "1 to 900"),
        ("DCGM_HEALTH_CHECK_TASK", "not-an-arn", "task-definition/<family>:<revision>"),
        ("DCGM_HEALTH_CHECK_TASK", "arn:aws:ecs:us-east-1:123456789012:task/x", "task-definition"),
        ("JOB_KEY", "bogus", "group, startedBy or tag:<TagKey>"),
        ("LOG_RETENTION_DAYS", "2", "1, 3, 5"),
        ("DRY_RUN", "maybe", "true/false/1/0/yes/no"),
        ("REMOVAL_POLICY", "snapshot", "retain or destroy"),
        ("DCGM_GPU_COUNT", "0", "1 to 16"),
    ],
)
def test_bad_value_names_variable_value_source_and_allowed(name: str, value: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Config.load(env={name: value})
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{name}={value!r} (from env)")
    assert allowed in message


def test_bad_context_value_says_context() -> None:
    with pytest.raises(ConfigError, match=r"^LAMBDA_MEMORY_SIZE='abc' \(from context\)"):
        Config.load(context={"LAMBDA_MEMORY_SIZE": "abc"}, env={"LAMBDA_MEMORY_SIZE": "256"})


def test_external_check_task_needs_its_log_group() -> None:
    with pytest.raises(ConfigError, match=r"DCGM_LOG_GROUP=''.*DCGM_HEALTH_CHECK_TASK is set"):
        Config.load(env={"DCGM_HEALTH_CHECK_TASK": ARN})
    config = Config.load(env={"DCGM_HEALTH_CHECK_TASK": ARN, "DCGM_LOG_GROUP": "/ecs/my-dcgm"})
    assert config.dcgm_task_family == "my-dcgm"
    assert not config.creates_dcgm_task


@pytest.mark.parametrize(("level", "too_short", "enough"), [(2, 299, 300), (3, 900, 1800), (4, 3600, 7200)])
def test_diag_level_and_timeout_are_validated_together(level: int, too_short: int, enough: int) -> None:
    with pytest.raises(ConfigError) as raised:
        Config.load(context={"DCGM_DIAG_LEVEL": level}, env={"DCGM_TIMEOUT_SECONDS": str(too_short)})
    assert str(raised.value) == (
        f"DCGM_TIMEOUT_SECONDS={too_short} (from env) is invalid because DCGM_DIAG_LEVEL={level} (from context) "
        f"runs longer; allowed: at least {enough} for level {level}"
    )
    assert Config.load(env={"DCGM_DIAG_LEVEL": str(level), "DCGM_TIMEOUT_SECONDS": str(enough)})


def test_two_tables_with_one_name_are_refused() -> None:
    with pytest.raises(ConfigError) as raised:
        Config.load(env={"NODE_TABLE_NAME": "ecs_task"})
    assert str(raised.value) == (
        "NODE_TABLE_NAME='ecs_task' (from env) is invalid because TASK_TABLE_NAME (from default) names the same "
        "table; allowed: a name no other table of the stack has"
    )


def test_a_second_stack_keeping_the_default_names_is_noticed() -> None:
    assert Config.load().fixed_name_defaults() == []
    second = Config.load(env={"STACK_NAME": "GpuRecoveryB", "TASK_TABLE_NAME": "b_ecs_task"})
    assert second.fixed_name_defaults() == ["JOB_TABLE_NAME", "NODE_TABLE_NAME", "SNS_TOPIC_NAME"]


def test_lambda_environment_is_exactly_the_contract() -> None:
    env = Config.load(env={"LOG_LEVEL": "debug", "DRY_RUN": "1"}).lambda_environment()
    derived = {"DCGM_TASK_FAMILY", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_NAMESPACE"}
    assert set(env) == set(StepSettings.model_fields) | derived
    assert all(isinstance(v, str) for v in env.values())
    assert env["DRY_RUN"] == "true"
    assert env["TERMINATE_QUARANTINED"] == "false"
    assert env["POWERTOOLS_LOG_LEVEL"] == "DEBUG"
    assert env["POWERTOOLS_SERVICE_NAME"] == "ecs-gpu-recovery"


def test_a_step_reads_every_setting_as_the_stack_wrote_it() -> None:
    changed = {"JOB_KEY": "tag:TrainingJob", "GPU_RESET_ENABLED": "yes", "MAX_JOB_NODES": "4", "DCGM_DIAG_LEVEL": "1"}
    config = Config.load(env=changed)
    settings = Settings.model_validate(config.lambda_environment())
    assert {n: getattr(settings, n) for n in StepSettings.model_fields} == {
        n: getattr(config, n) for n in StepSettings.model_fields
    }
    assert config.dcgm_task_family == settings.DCGM_TASK_FAMILY


def test_published_settings_table_is_current() -> None:
    assert SETTINGS_DOC.read_text() == settings_document(), "run `make generated`"


def test_simulator_modules_do_not_import_cdk() -> None:
    for module in ("config", "substitutions", "event_pattern"):
        source = (ROOT / "infra" / f"{module}.py").read_text()
        assert not re.search(r"^\s*(from|import) (aws_cdk|constructs|cdk_nag)", source, re.M), module


@pytest.mark.parametrize(
    ("doc", "link"), [("README.md", "docs/configuration-table.md"), ("docs/configuration.md", "configuration-table.md")]
)
def test_docs_link_the_generated_table_instead_of_copying_it(doc: str, link: str) -> None:
    text = (ROOT / doc).read_text()
    assert f"]({link})" in text
    assert "| Variable | Default |" not in text


def test_reboot_timeout_by_family_is_validated_in_one_line() -> None:
    config = Config.load(context={"REBOOT_TIMEOUT_SECONDS_BY_FAMILY": "p5=1800,p4d=1200"})
    assert config.reboot_timeouts_by_family() == {"p5": 1800, "p4d": 1200}
    assert config.longest_reboot_timeout() == 1800
    for bad, where in (("p5=30", "p5=30"), ("p5:1800", "allowed"), ("p5=1800,", "allowed")):
        with pytest.raises(ConfigError, match=where) as error:
            Config.load(context={"REBOOT_TIMEOUT_SECONDS_BY_FAMILY": bad})
        assert "\n" not in str(error.value)


def test_reboot_timeout_by_family_has_the_bounds_of_reboot_timeout_seconds() -> None:
    field = Config.model_json_schema()["properties"]["REBOOT_TIMEOUT_SECONDS"]
    low, high = field["minimum"], field["maximum"]
    for seconds in (low, high):
        assert (
            Config.load(context={"REBOOT_TIMEOUT_SECONDS_BY_FAMILY": f"p5={seconds}"}).longest_reboot_timeout() >= low
        )
    for seconds in (low - 1, high + 1):
        with pytest.raises(ConfigError, match=f"is invalid at p5={seconds};"):
            Config.load(context={"REBOOT_TIMEOUT_SECONDS_BY_FAMILY": f"p5={seconds}"})
