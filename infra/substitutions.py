"""The `${Key}` placeholders of statemachine/recovery.asl.json and the values CDK substitutes for them.

Importable without aws_cdk: the local simulator fills the same keys with its own ARNs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

SUBSTITUTION_KEYS: tuple[str, ...] = (
    "ClassifyFailureFunctionArn",
    "AcquireNodeFunctionArn",
    "AnalyzeDiagFunctionArn",
    "RecordNodeStateFunctionArn",
    "RestartJobFunctionArn",
    "HandleErrorFunctionArn",
    "ClusterArn",
    "DcgmTaskDefinitionArn",
    "DcgmContainerName",
    "NotificationTopicArn",
    "JobTableName",
    "TaskTableName",
)

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def placeholders(definition: str) -> set[str]:
    """Every `${Key}` used in an ASL document."""
    return set(_PLACEHOLDER.findall(definition))


def definition_substitutions(values: Mapping[str, str]) -> dict[str, str]:
    """Return the substitutions, refusing a missing or unknown key so the definition never keeps a `${...}`."""
    missing = set(SUBSTITUTION_KEYS) - set(values)
    unknown = set(values) - set(SUBSTITUTION_KEYS)
    if missing or unknown:
        raise ValueError(f"definition substitutions: missing {sorted(missing)}, unknown {sorted(unknown)}")
    return {key: values[key] for key in SUBSTITUTION_KEYS}
