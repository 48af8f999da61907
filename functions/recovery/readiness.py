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
alone would end the wait before the instance even went down. Each step's own models and logic are in its module
(await_agent, agent_connected), so neither creates the other's model classes at its cold start."""

from __future__ import annotations

from datetime import datetime


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
