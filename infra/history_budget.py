"""Worst-case execution history of one recovery, against Step Functions' limit of 25,000 events per Standard
execution (Step Functions developer guide, "Service quotas": execution history). CheckNodes is an inline Map: the
events of every node's iteration count toward the one execution's history.

The cost of each state comes from the definition: a Pass, Choice, Wait, Succeed or Fail state logs two events
(entered, exited); a Task logs five (entered, scheduled, started, succeeded or failed, exited), six for ``.sync``
(submitted). The bound follows the longest path of a node's iteration: the lock loop (NODE_LOCK_MAX_WAITS), the
first check, one recheck, a GPU reset with every status poll (with GPU_RESET_ENABLED), a reboot (its wait for the
agent is one task-token state, however long the reboot), the check after each repair, and the longest way out
(quarantine and terminate).
A retried call adds three events (scheduled, started, failed); RETRIES_PER_NODE of them are allowed per node.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Final

# The checkout's statemachine/, or the copy packaged in the wheel: Config.load checks this bound, and the installed
# CLI loads configurations (scenario files) outside any checkout. Importing gpu_recovery also puts functions/ (the
# Lambda asset root) on sys.path for `recovery`.
from gpu_recovery.resources import DEFINITION as DEFINITION_FILE
from recovery.settings import GPU_RESET_POLL_MAX_ATTEMPTS

HISTORY_EVENT_LIMIT: Final = 25_000
RETRIES_PER_NODE: Final = 5
# GPU reset status polls (the definition's settings.gpuResetPollMaxAttempts).
GPU_RESET_POLLS: Final = GPU_RESET_POLL_MAX_ATTEMPTS
_LOCK_LOOP: Final = ("LockNode", "DidWeLockTheNode", "WaitForOtherRepair")
_LOCKED: Final = ("LockNode", "DidWeLockTheNode")
_CHECK: Final = ("RunDcgmDiag", "AnalyzeDiag", "WhatDoesTheVerdictCallFor")
_RECHECK: Final = ("PrepareRecheck", *_CHECK)
_GPU_RESET: Final = ("DrainNodeForGpuReset", "RecordGpuReset", "ResetGpu", "ReactivateNodeAfterGpuReset",
                     "PrepareCheckAfterGpuReset", *_CHECK)  # fmt: skip
_RESET_POLL: Final = ("WaitForGpuReset", "GetGpuResetResult", "HasGpuResetFinished", "CountGpuResetPoll",
                      "AnyGpuResetPollsLeft")  # fmt: skip
_REBOOT: Final = ("DrainNode", "RecordReboot", "RebootInstance", "WaitForAgent", "ReactivateNode",
                  "PrepareCheckAfterReboot", *_CHECK)  # fmt: skip
_WAY_OUT: Final = ("DrainNodeForQuarantine", "QuarantineNode", "ShouldTerminateQuarantined", "TerminateInstance",
                   "NodeChecked")  # fmt: skip
_MAP_ITERATION: Final = 2  # iteration started, succeeded
_RETRY: Final = 3


def state_events(state: dict[str, Any]) -> int:
    """History events of one visit of a state, without retries."""
    if state["Type"] != "Task":
        return 2
    return 6 if state["Resource"].endswith(".sync") else 5


@cache
def _definition() -> dict[str, Any]:
    return dict(json.loads(DEFINITION_FILE.read_text()))


def events_per_node(node_lock_max_waits: int, gpu_reset_polls: int) -> int:
    """The longest iteration of CheckNodes for one node; ``gpu_reset_polls`` is 0 without GPU_RESET_ENABLED."""
    states = _definition()["States"]["CheckNodes"]["ItemProcessor"]["States"]

    def cost(names: tuple[str, ...]) -> int:
        return sum(state_events(states[name]) for name in names)

    reset = cost(_GPU_RESET) + gpu_reset_polls * cost(_RESET_POLL) if gpu_reset_polls else 0
    return (
        _MAP_ITERATION
        + node_lock_max_waits * cost(_LOCK_LOOP)
        + cost(_LOCKED)
        + cost(_CHECK)
        + cost(_RECHECK)
        + reset
        + cost(_REBOOT)
        + cost(_WAY_OUT)
        + RETRIES_PER_NODE * _RETRY
    )


def worst_case_events(max_job_nodes: int, node_lock_max_waits: int, gpu_reset_polls: int) -> int:
    """The longest execution for a job on ``max_job_nodes`` nodes, one sibling task to stop per node."""
    states = _definition()["States"]
    stop = _MAP_ITERATION + sum(state_events(s) for s in states["StopJobTasks"]["ItemProcessor"]["States"].values())
    # Top-level states once each (a Map logs its own start and end besides entered and exited).
    top = sum(state_events(s) + (2 if s["Type"] == "Map" else 0) for s in states.values())
    per_node = events_per_node(node_lock_max_waits, gpu_reset_polls)
    return top + max_job_nodes * (per_node + stop)
