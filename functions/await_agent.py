"""WaitForAgent: the AwaitAgent Lambda stores the state's task token on the rebooted node and looks at its ECS agent
once; AgentConnected completes the token when the agent is back (recovery.readiness)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from recovery.aws import Ecs, StepFunctions
from recovery.observability import step_handler
from recovery.readiness import AgentWaitRequest, await_agent
from recovery.settings import get_settings
from recovery.tables import Tables


@step_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    request = AgentWaitRequest.model_validate(event)
    return await_agent(request, Ecs(settings.ECS_CLUSTER_NAME), Tables.from_settings(settings), StepFunctions()).dump()
