"""The `${Key}` placeholders of statemachine/recovery.asl.json and the values CDK substitutes for them.

Importable without aws_cdk: the local simulator fills the same keys with its own ARNs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# The step Lambdas: module in functions/ -> the name the stack and the definition know it by. The definition
# reaches each as ${<name>FunctionArn}; the stack and the local simulator both deploy from this one table.
STEP_FUNCTIONS: dict[str, str] = {
    "classify_failure": "ClassifyFailure",
    "acquire_node": "AcquireNode",
    "analyze_diag": "AnalyzeDiag",
    "record_node_state": "RecordNodeState",
    "restart_job": "RestartJob",
    "handle_error": "HandleError",
    "await_agent": "AwaitAgent",
}


# Lambdas an EventBridge rule invokes, not the state machine: deployed beside the steps (same asset, same
# settings), absent from the definition. CleanupExecution puts right what an execution that ended FAILED,
# TIMED_OUT or ABORTED still holds; AgentConnected ends a rebooted node's WaitForAgent once its agent is back.
EVENT_FUNCTIONS: dict[str, str] = {"cleanup_execution": "CleanupExecution", "agent_connected": "AgentConnected"}
LAMBDAS: dict[str, str] = STEP_FUNCTIONS | EVENT_FUNCTIONS


def function_arn_key(name: str) -> str:
    """The placeholder key of a step Lambda's ARN, e.g. ClassifyFailureFunctionArn."""
    return f"{name}FunctionArn"


SUBSTITUTION_KEYS: tuple[str, ...] = (
    # Every ARN the definition builds itself (the service integrations, arn:<partition>:states:::...) takes the
    # stack's partition: the stack also deploys to aws-cn and aws-us-gov (aws-cdk issue #4597 is this bug in CDK).
    "Partition",
    *(function_arn_key(name) for name in STEP_FUNCTIONS.values()),
    "ClusterArn",
    "DcgmTaskDefinitionArn",
    "DcgmContainerName",
    "NotificationTopicArn",
    "JobTableName",
    "TaskTableName",
    # The stack's SSM document that resets GPUs (infra/gpu_reset_document.py).
    "GpuResetDocumentName",
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
