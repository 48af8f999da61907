"""The ECS agent of a rebooted node, as EventBridge sees it: "ECS Container Instance State Change" when it
disconnects (the OS shuts down) and when it reconnects (the reboot's simulated duration later). Shaped like the
AWS event reference (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_container_instance_events.html);
its detail is the container instance as DescribeContainerInstances returns it."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from gpu_recovery.clock import SimClock
from gpu_recovery.sim.events import ecs_event, iso

AgentListener = Callable[[dict[str, Any]], None]


def container_instance_state_change(
    ci: Any, cluster_arn: str, account: str, region: str, at: datetime
) -> dict[str, Any]:
    """The event ECS emits for the current state of ``ci`` (a moto ContainerInstance)."""
    detail = {
        "agentConnected": bool(ci.agent_connected),
        "attributes": [{"name": k, "value": v} for k, v in ci.attributes.items() if v is not None],
        "clusterArn": cluster_arn,
        "containerInstanceArn": ci.container_instance_arn,
        "ec2InstanceId": ci.ec2_instance_id,
        "registeredResources": ci.registered_resources,
        "remainingResources": ci.remaining_resources,
        "status": ci.status,
        "updatedAt": iso(at),
    }
    change = "ECS Container Instance State Change"
    return ecs_event(change, ci.container_instance_arn, detail, account=account, region=region, at=at)


class AgentEvents:
    """Publishes a rebooted node's disconnect now and its reconnect when it is due, to every listener (the local
    stack delivers them through its EventBridge rule). The reconnect is a participant of the clock's scheduler:
    it wakes at the reconnect time, so nothing has to poll the fleet for the agent to come back."""

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self._listeners: list[AgentListener] = []

    def subscribe(self, listener: AgentListener) -> None:
        self._listeners.append(listener)

    def rebooted(self, current: Callable[[], dict[str, Any] | None], back_at: float) -> None:
        """``current()`` is the node's event now, or None when the node went away (terminated) meanwhile."""
        if not self._listeners:
            return

        def watch() -> None:
            self._publish(current())
            if math.isfinite(back_at):
                self._clock.sleep(max(0.0, back_at - self._clock.elapsed()))
                self._publish(current())

        self._clock.thread_class()(target=watch, name="agent-events", daemon=True).start()

    def _publish(self, event: dict[str, Any] | None) -> None:
        if event is None:
            return
        for listener in self._listeners:
            listener(event)
