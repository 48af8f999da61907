"""AgentConnected: an EventBridge rule sends every "ECS Container Instance State Change" of the cluster here; a
rebooting node's disconnect is recorded, and its reconnect completes the WaitForAgent token (recovery.readiness)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from recovery.aws import StepFunctions
from recovery.models import CamelModel
from recovery.observability import step_handler
from recovery.readiness import back_from_reboot
from recovery.settings import get_settings
from recovery.tables import Tables


class ContainerInstanceStateChange(CamelModel):
    """The detail of an "ECS Container Instance State Change" event (the fields of DescribeContainerInstances'
    ContainerInstance that readiness reads; ECS developer guide, "Amazon ECS container instance state change
    events")."""

    cluster_arn: str
    container_instance_arn: str
    ec2_instance_id: str
    agent_connected: bool
    updated_at: datetime


class AgentEvent(CamelModel):
    node_id: str
    connected: bool
    completed: bool


def on_agent_event(change: ContainerInstanceStateChange, tables: Tables, sfn: StepFunctions) -> AgentEvent:
    """A disconnect of a REBOOTING node is recorded; a reconnect after it completes the stored token. Idempotent:
    a token already used, timed out or absent leaves nothing to do (SendTaskSuccess's TaskDoesNotExist,
    TaskTimedOut and InvalidToken errors, Step Functions API reference)."""
    node_id = change.ec2_instance_id
    if not change.agent_connected:
        tables.mark_agent_down(node_id, change.updated_at.isoformat())
        return AgentEvent(node_id=node_id, connected=False, completed=False)
    state = tables.get_node(node_id) or {}
    token = state.get("agentWaitToken")
    waiting = state.get("status") == "REBOOTING" and isinstance(token, str)
    completed = (
        waiting
        and back_from_reboot(state, change.updated_at)
        and sfn.send_task_success(str(token), json.dumps({"owned": True}))
    )
    return AgentEvent(node_id=node_id, connected=True, completed=completed)


@step_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    change = ContainerInstanceStateChange.model_validate(event["detail"])
    return on_agent_event(change, Tables.from_settings(get_settings()), StepFunctions()).dump()
