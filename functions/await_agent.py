"""WaitForAgent: the AwaitAgent Lambda stores the state's task token on the rebooted node and looks at its ECS agent
once; AgentConnected completes the token when the agent is back (recovery.readiness)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from recovery import clock
from recovery.aws import Ecs, StepFunctions
from recovery.models import CamelModel, ExecutionContext, NodeRef
from recovery.observability import step_handler
from recovery.readiness import back_from_reboot
from recovery.settings import get_settings
from recovery.tables import Tables


class AgentWaitRequest(CamelModel):
    """AwaitAgent's payload: the node, this execution, and the token of the WaitForAgent state."""

    node: NodeRef
    execution: ExecutionContext
    task_token: str


class AgentWait(CamelModel):
    node_id: str
    stored: bool  # False: this execution no longer owns the node (the token is completed at once)
    completed: bool  # the token was completed by this call


def await_agent(request: AgentWaitRequest, ecs: Ecs, tables: Tables, sfn: StepFunctions) -> AgentWait:
    """Store the token (only while this execution owns the node), then look once: an agent that is already back
    completes the wait here; one that is down is recorded down, so its reconnect event completes it."""
    node_id, me, token = request.node.ec2_instance_id, request.execution.id, request.task_token
    stored = tables.update_node(node_id, me, {"agentWaitToken": token}, release=False)
    if not stored:
        # Lost the node (an operator or a takeover): nothing to wait for; ReleaseNode reports it LOST.
        sfn.send_task_success(token, json.dumps({"owned": False}))
        return AgentWait(node_id=node_id, stored=False, completed=True)
    connected = ecs.agent_connected(request.node.container_instance_arn)
    if not connected:
        tables.update_node(node_id, me, {"agentDownAt": clock.utcnow().isoformat()}, release=False)
        return AgentWait(node_id=node_id, stored=True, completed=False)
    completed = back_from_reboot(tables.get_node(node_id) or {}, clock.utcnow()) and sfn.send_task_success(
        token, json.dumps({"owned": True})
    )
    return AgentWait(node_id=node_id, stored=True, completed=completed)


@step_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    request = AgentWaitRequest.model_validate(event)
    return await_agent(request, Ecs(settings.ECS_CLUSTER_NAME), Tables.from_settings(settings), StepFunctions()).dump()
