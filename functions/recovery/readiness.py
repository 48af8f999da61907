"""Readiness after a reboot, observed instead of waited for.

The WaitForAgent state waits with a task token (`.waitForTaskToken`, Step Functions developer guide, "Wait for a
Callback with Task Token"): AwaitAgent stores the token on the node's STATE row and checks the agent once; an
EventBridge rule on "ECS Container Instance State Change" invokes AgentConnected, which completes the token with
SendTaskSuccess once the node's agent is back. The state's TimeoutSecondsPath (the instance type's expected reboot
time) is the only deadline: when it passes, States.Timeout quarantines the node.

"Back" means connected again *after a disconnect seen since the reboot was recorded*: the ECS container agent
disconnects and reconnects several times an hour as part of its normal operation, and each change of
`agentConnected` is a container instance state change event (ECS developer guide, "Amazon ECS container instance
state change events"). Right after RebootInstances the agent usually still shows connected, so `agentConnected`
alone would end the wait before the instance even went down."""

from __future__ import annotations

import json
from datetime import datetime

from recovery import clock
from recovery.aws import Ecs, StepFunctions
from recovery.models import CamelModel, ContainerInstanceStateChange, ExecutionContext, NodeRef
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


def _at(value: object) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


def back_from_reboot(state: dict[str, object], connected_at: datetime) -> bool:
    """Whether an agent seen connected at `connected_at` came back from the node's last recorded reboot (the
    last time in `reboots`): a disconnect was seen after that reboot (`agentDownAt`) and before `connected_at`.
    EventBridge does not promise order, so a connected event older than the disconnect proves nothing."""
    reboots = state.get("reboots")
    rebooted = _at(reboots[-1]) if isinstance(reboots, list) and reboots else None
    down = _at(state.get("agentDownAt"))
    return rebooted is not None and down is not None and rebooted <= down < connected_at


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
