"""The fleet's GPU instances: what the ECS agent registers for each, its fault's state over time, and what a reboot,
a GPU reset or a termination does to the instance itself (what they do to its tasks is gpu_recovery.sim.tasks').

Plain data and functions: the fleet calls them under its one lock (gpu_recovery.sim.fleet)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from moto.ecs.exceptions import InvalidParameterException

from gpu_recovery.sim import placement
from gpu_recovery.sim.faults import FAULTS, NO_FAULT, FaultBehaviour
from gpu_recovery.sim.specs import NodeSpec

# vCPUs and MiB the ECS agent registers per instance type (physical memory minus the agent's reserve).
_INSTANCE_RESOURCES: Final = {
    "p4d.24xlarge": (96, 1_140_000),
    "p4de.24xlarge": (96, 1_140_000),
    "p5.48xlarge": (192, 2_040_000),
    "g5.48xlarge": (192, 760_000),
    "g6.48xlarge": (192, 760_000),
}
_DEFAULT_RESOURCES: Final = (96, 760_000)


@dataclass
class Node:
    spec: NodeSpec
    instance_id: str
    ci: Any  # moto ContainerInstance
    inventory: list[dict[str, Any]]
    free_gpus: list[str]
    cleared: bool = False  # a reboot or reset cleared the fault (transient/flapping)
    cleared_at: float = 0.0
    healthy_checks_since_clear: int = 0
    reconnect_at: float | None = None  # sim seconds at which the agent is back after a reboot (inf: never)
    terminated: bool = False


def register_resources(node: Node) -> None:
    """Register what the ECS agent reports for a GPU instance: its CPU/memory and GPUs as a STRINGSET."""
    vcpus, memory = _INSTANCE_RESOURCES.get(node.spec.instance_type, _DEFAULT_RESOURCES)
    gpu_ids = [g["uuid"] for g in node.inventory]
    for resources in (node.ci.registered_resources, node.ci.remaining_resources):
        for resource in resources:
            if resource["name"] == "CPU":
                resource["integerValue"] = vcpus * 1024
            elif resource["name"] == "MEMORY":
                resource["integerValue"] = memory
        resources.append(
            {"name": "GPU", "type": "STRINGSET", "doubleValue": 0.0, "integerValue": 0, "longValue": 0,
             "stringSetValue": list(gpu_ids)}
        )  # fmt: skip
    node.ci.version_info = {
        "agentVersion": "1.89.3",
        "agentHash": "0c2a8c0e",
        "dockerVersion": "DockerVersion: 25.0.8",
    }


def remaining(node: Node, name: str) -> int:
    return next(int(r["integerValue"]) for r in node.ci.remaining_resources if r["name"] == name)


def fault_active(node: Node, at: float) -> bool:
    fault = node.spec.fault
    if fault is None:
        return False
    if not node.cleared:
        return True
    if fault.persistence != "flapping":
        return False
    if fault.flap_after_seconds is not None and at >= node.cleared_at + fault.flap_after_seconds:
        return True
    return node.healthy_checks_since_clear >= fault.flap_after_checks


def active_kind(node: Node, at: float) -> str | None:
    return node.spec.fault.kind if node.spec.fault and fault_active(node, at) else None


def behaviour(node: Node, at: float) -> FaultBehaviour:
    kind = active_kind(node, at)
    return NO_FAULT if kind is None else FAULTS[kind]


def clear_fault(node: Node, now: float) -> None:
    """A reboot (or a reset that covers the fault) clears a transient or flapping fault; a flapping one comes back
    later, a persistent one stays."""
    fault = node.spec.fault
    if fault is not None and fault.persistence in ("transient", "flapping"):
        node.cleared, node.cleared_at, node.healthy_checks_since_clear = True, now, 0


def reboot(node: Node, now: float, reboot_seconds: float, *, never_returns: bool) -> None:
    """The agent disconnects until the instance is back (never, for a fault whose agent never returns)."""
    node.ci.agent_connected = False
    node.reconnect_at = math.inf if never_returns else now + reboot_seconds
    clear_fault(node, now)


def terminate(node: Node) -> None:
    node.terminated = True
    node.reconnect_at = None
    node.ci.agent_connected = False
    node.ci.status = "INACTIVE"  # ECS deregisters the container instance of a terminated instance


def member_of(expression: str, node: Node) -> bool:
    """Whether the node satisfies a ``memberOf`` cluster query (gpu_recovery.sim.placement.member_of); one the
    fleet does not evaluate is ECS's InvalidParameterException."""
    try:
        return placement.member_of(expression, node.instance_id, node.ci.attributes)
    except placement.UnsupportedExpression as error:
        raise InvalidParameterException(str(error)) from None
