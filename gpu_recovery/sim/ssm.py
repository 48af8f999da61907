"""SSM Run Command on the fleet's instances: the GPU reset the workflow sends (the stack's
GPU reset document, which runs ``nvidia-smi --gpu-reset -i N`` for each listed GPU).

A reset clears an active fault of a reset-clearable kind on the GPUs it covers (unless the fault is persistent); a
GPU that fell off the bus cannot be reset (the command fails); anything else is left as it was. The invocation is
``InProgress`` for ``reset_seconds``, then ``Success`` or ``Failed`` (SSM ``GetCommandInvocation``).

Plain data and functions: the fleet calls them under its one lock (gpu_recovery.sim.fleet)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpu_recovery.sim import instances
from gpu_recovery.sim.faults import Reset
from gpu_recovery.sim.instances import Node
from infra.gpu_reset_document import GPU_RESET_PARAMETER


@dataclass
class GpuReset:
    """An SSM Run Command invocation of nvidia-smi --gpu-reset on one of our instances."""

    node: Node
    done_at: float
    succeeded: bool
    output: str


def reset_gpus(command: Any) -> list[int]:
    """The GPU indexes the command resets: the stack's GPU reset document's one parameter, "N,M" (none: not a
    GPU reset)."""
    values = (command.parameters or {}).get(GPU_RESET_PARAMETER, [])
    return [int(index) for value in values for index in str(value).split(",") if index.isdigit()]


def reset(node: Node, gpus: list[int], now: float, reset_seconds: float) -> GpuReset:
    """Reset ``gpus`` of ``node`` now: the fault it clears is cleared at once, the command ends later."""
    fault = node.spec.fault
    behaviour = instances.behaviour(node, now)
    if behaviour.reset is Reset.FAILS:
        return GpuReset(
            node, now + reset_seconds, False, f"Unable to reset GPU {gpus[0]}: GPU is lost (fallen off the bus)."
        )
    if fault is not None and behaviour.reset is Reset.CLEARS and set(fault.gpus) <= set(gpus):
        instances.clear_fault(node, now)
    return GpuReset(node, now + reset_seconds, True, "\n".join(f"GPU {i} was successfully reset." for i in gpus))


def invocation(done: GpuReset, now: float, invocation: dict[str, Any]) -> dict[str, Any]:
    """moto's GetCommandInvocation answer, with the reset's status at ``now``."""
    if now < done.done_at:
        status, code, out = "InProgress", -1, ""
    elif done.succeeded:
        status, code, out = "Success", 0, done.output
    else:
        status, code, out = "Failed", 1, ""
    return dict(invocation) | {
        "Status": status,
        "StatusDetails": status,
        "ResponseCode": code,
        "StandardOutputContent": out,
        "StandardErrorContent": "" if done.succeeded else done.output,
    }
