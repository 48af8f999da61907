"""AgentConnected: an EventBridge rule sends every "ECS Container Instance State Change" of the cluster here; a
rebooting node's disconnect is recorded, and its reconnect completes the WaitForAgent token (recovery.readiness)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from recovery.aws import StepFunctions
from recovery.models import ContainerInstanceStateChange
from recovery.observability import step_handler
from recovery.readiness import on_agent_event
from recovery.settings import get_settings
from recovery.tables import Tables


@step_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    change = ContainerInstanceStateChange.model_validate(event["detail"])
    return on_agent_event(change, Tables.from_settings(get_settings()), StepFunctions()).dump()
