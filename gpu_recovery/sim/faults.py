"""What each fault kind does to a node, as data (like the XID catalog): one row per kind, read by the fleet.

What the DCGM check prints for a kind (its exit code, failed test, XID lines) is in ``dcgm.FAULT_PROFILES``; this
table says how the node *behaves*. Sources: NVIDIA's XID catalog (../shared/reference/nvidia/) for which XIDs a
GPU reset clears (resolution RESET_GPU) and that a GPU which fell off the bus (XID 79) cannot be reset."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final


class Reset(Enum):
    """What ``nvidia-smi --gpu-reset`` of the fault's GPUs does."""

    CLEARS = "clears"  # the reset succeeds and clears the fault (unless it is persistent)
    FAILS = "fails"  # the command fails: the GPU is lost
    NO_EFFECT = "no effect"  # the reset succeeds; the fault stays


@dataclass(frozen=True)
class FaultBehaviour:
    reset: Reset = Reset.NO_EFFECT
    check_hangs: bool = False  # the DCGM check never ends; only StopTask (then SIGKILL) stops it
    agent_never_returns: bool = False  # after a reboot the ECS agent never reconnects
    check_unplaceable: bool = False  # RunTask of the check fails RESOURCE:GPU (the GPU is missing)


FAULTS: Final[dict[str, FaultBehaviour]] = {
    "xid79": FaultBehaviour(reset=Reset.FAILS),
    "xid48": FaultBehaviour(reset=Reset.CLEARS),
    "xid63": FaultBehaviour(reset=Reset.CLEARS),
    "xid64": FaultBehaviour(),
    "xid74": FaultBehaviour(reset=Reset.CLEARS),
    "xid94": FaultBehaviour(reset=Reset.CLEARS),
    "xid95": FaultBehaviour(reset=Reset.CLEARS),
    "xid119": FaultBehaviour(reset=Reset.CLEARS),
    "isolate": FaultBehaviour(),
    "app_crash": FaultBehaviour(),
    "check_hangs": FaultBehaviour(check_hangs=True),
    "never_returns": FaultBehaviour(reset=Reset.FAILS, agent_never_returns=True),
    "unplaceable": FaultBehaviour(check_unplaceable=True),
}

NO_FAULT: Final = FaultBehaviour()
