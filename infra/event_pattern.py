"""The EventBridge pattern that starts a recovery. Importable without aws_cdk: the local simulator filters
injected events through this same pattern."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Stop codes that are never a GPU fault: an operator or a service stopped the task, or EC2 reclaimed the host.
# Siblings we stop ourselves while recovering a job stop with UserInitiated, so they are ignored too.
# TaskFailedToStart: the task never ran (e.g. its image could not be pulled), so no GPU work failed.
IGNORED_STOP_CODES: tuple[str, ...] = (
    "UserInitiated",
    "ServiceSchedulerInitiated",
    "SpotInterruption",
    "TerminationNotice",
    "TaskFailedToStart",
)


def check_task_group(dcgm_task_family: str) -> str:
    """The group ECS gives our DCGM check: RunDcgmDiag names no group, and RunTask's group "defaults to the
    family name of the task definition (for example, family:my-family-name)" (ECS API reference, RunTask).
    Not startedBy: Step Functions stamps "AWS Step Functions" on every ecs:runTask.sync task, customers' too."""
    return f"family:{dcgm_task_family}"


def task_failure_pattern(cluster_arns: Sequence[str], dcgm_task_family: str) -> dict[str, Any]:
    """ECS Task State Change events for STOPPED tasks of the given clusters that might be GPU failures.

    EventBridge's anything-but never matches a missing field, and tasks without a group or without stopCode
    must still match, so each exclusion is "absent, or anything but ...". One object may hold only one $or,
    hence the cross product of the two conditions.
    """
    group = [[{"exists": False}], [{"anything-but": [check_task_group(dcgm_task_family)]}]]
    stop_code = [[{"exists": False}], [{"anything-but": list(IGNORED_STOP_CODES)}]]
    return {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {
            "lastStatus": ["STOPPED"],
            "clusterArn": list(cluster_arns),
            "$or": [{"group": g, "stopCode": c} for g in group for c in stop_code],
        },
    }


# Ends of an execution that may leave locks or drained nodes behind (SUCCEEDED released everything).
BAD_EXECUTION_ENDS: tuple[str, ...] = ("FAILED", "TIMED_OUT", "ABORTED")


def execution_ended_badly_pattern(state_machine_arns: Sequence[str]) -> dict[str, Any]:
    """Step Functions "Execution Status Change" events (delivered to the default bus for Standard workflows)
    of the given state machines' executions that ended FAILED, TIMED_OUT or ABORTED."""
    return {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"stateMachineArn": list(state_machine_arns), "status": list(BAD_EXECUTION_ENDS)},
    }


def agent_state_change_pattern(cluster_arns: Sequence[str]) -> dict[str, Any]:
    """ "ECS Container Instance State Change" events of the given clusters, connected and disconnected alike:
    readiness after a reboot is a reconnect *after a disconnect* (functions/recovery/readiness.py), because the
    agent also reconnects routinely (ECS developer guide, "Amazon ECS container instance state change events")."""
    return {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Container Instance State Change"],
        "detail": {"clusterArn": list(cluster_arns), "agentConnected": [True, False]},
    }
