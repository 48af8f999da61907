"""The state machine: the ASL file, its substitutions, logging and tracing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import Config
from infra.substitutions import SUBSTITUTION_KEYS, definition_substitutions, placeholders
from infra.workflow import (
    DEFINITION_FILE,
    execution_timeout_seconds,
    job_rounds,
)
from tests.infra.helpers import of_type


def test_every_placeholder_has_a_substitution_and_vice_versa() -> None:
    used = placeholders(DEFINITION_FILE.read_text())
    assert used == set(SUBSTITUTION_KEYS)


def test_definition_substitutions_refuses_missing_or_unknown_keys() -> None:
    values = {key: f"value-of-{key}" for key in SUBSTITUTION_KEYS}
    assert definition_substitutions(values) == values
    with pytest.raises(ValueError, match="missing \\['TaskTableName'\\]"):
        definition_substitutions({k: v for k, v in values.items() if k != "TaskTableName"})
    with pytest.raises(ValueError, match="unknown \\['Extra'\\]"):
        definition_substitutions({**values, "Extra": "x"})


def _machine(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (machine,) = of_type(resources, "AWS::StepFunctions::StateMachine").values()
    return machine["Properties"]


def test_state_machine_loads_the_file_and_substitutes_every_key(resources: dict[str, dict[str, Any]]) -> None:
    props = _machine(resources)
    # The file, with its TimeoutSeconds added; CloudFormation applies the substitutions.
    assert set(props["DefinitionSubstitutions"]) == set(SUBSTITUTION_KEYS)
    assert props["DefinitionSubstitutions"]["DcgmContainerName"] == "dcgm-check"
    assert props["DefinitionSubstitutions"]["Partition"] == {"Ref": "AWS::Partition"}
    shipped = json.loads(props["DefinitionString"])
    assert shipped == json.loads(DEFINITION_FILE.read_text()) | {"TimeoutSeconds": shipped["TimeoutSeconds"]}


def test_execution_timeout_is_derived_from_the_bounds(resources: dict[str, dict[str, Any]]) -> None:
    shipped = json.loads(_machine(resources)["DefinitionString"])
    config = Config.load(context={}, env={})
    assert shipped["TimeoutSeconds"] == execution_timeout_seconds(config)
    # Defaults: a node at its worst (30 lock waits, 4 checks, reset, re-check wait, reboot, 20 agent polls, its
    # Lambda steps) and the job's own steps: about 4.1 hours; MAX_JOB_NODES=16, all checked at once, is one round.
    assert job_rounds(config) == 1
    assert 4 * 3600 < shipped["TimeoutSeconds"] < 4.3 * 3600
    narrower = Config.load(context={"NODE_CHECK_CONCURRENCY": "8"}, env={})
    assert job_rounds(narrower) == 2
    assert execution_timeout_seconds(narrower) > execution_timeout_seconds(config)
    longer = Config.load(context={"DCGM_TIMEOUT_SECONDS": "1800"}, env={})
    assert execution_timeout_seconds(longer) == execution_timeout_seconds(config) + job_rounds(config) * 4 * 900


def test_standard_type_logging_all_and_tracing(resources: dict[str, dict[str, Any]]) -> None:
    props = _machine(resources)
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is True
    (log_group_id,) = [
        lid
        for lid, group in of_type(resources, "AWS::Logs::LogGroup").items()
        if group["Properties"].get("LogGroupName") == "/aws/vendedlogs/states/EcsGpuRecoveryStack-recovery"
    ]
    assert logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"] == {"Fn::GetAtt": [log_group_id, "Arn"]}
    assert props["RoleArn"]["Fn::GetAtt"][0].startswith("WorkflowRole")
