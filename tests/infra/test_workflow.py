"""The state machine: the ASL file, its substitutions, logging and tracing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App

from infra.stack import EcsGpuRecoveryStack
from infra.substitutions import SUBSTITUTION_KEYS, definition_substitutions, placeholders
from infra.workflow import DEFINITION_FILE
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


def test_state_machine_loads_the_file_and_substitutes_every_key(
    default_app: tuple[App, EcsGpuRecoveryStack], resources: dict[str, dict[str, Any]]
) -> None:
    props = _machine(resources)
    # DefinitionBody.from_file ships the file as an asset; CloudFormation applies the substitutions.
    assert set(props["DefinitionSubstitutions"]) == set(SUBSTITUTION_KEYS)
    assert props["DefinitionSubstitutions"]["DcgmContainerName"] == "dcgm-check"
    assert props["DefinitionSubstitutions"]["Partition"] == {"Ref": "AWS::Partition"}
    assembly = Path(default_app[0].synth().directory)
    shipped = assembly / f"asset.{props['DefinitionS3Location']['Key']}"
    assert shipped.read_text() == DEFINITION_FILE.read_text()


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
