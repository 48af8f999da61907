"""The ECS task lifecycle on the fleet's instances: a task as RunTask creates it (moto's ``Task``, with the fields
ECS reports for a task placed on an EC2 container instance), its stop, and the instance resources it holds.

Plain data and functions: the fleet calls them under its one lock (gpu_recovery.sim.fleet)."""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from moto.ecs.models import Task

from gpu_recovery.sim.instances import Node

ESSENTIAL_EXITED: Final = "Essential container in task exited"
SIGTERM_EXIT: Final = 143  # containers killed by the OS shutdown of a reboot
SIGKILL_EXIT: Final = 137  # a hung check ignores SIGTERM; docker stop SIGKILLs it after the stop timeout
DEFAULT_STOP_TIMEOUT_SECONDS: Final = 30.0


@dataclass
class SimTask:
    task: Any  # moto Task
    node: Node
    gpu_ids: list[str]
    cpu: int
    memory: int
    is_check: bool
    check_ends_at: float | None = None  # DCGM checks only; None: hangs until StopTask
    stop_timeout: float = 0.0
    killed_at: float | None = None  # a hung check after StopTask: when ECS SIGKILLs it
    check_level: int = 2
    log_group: str = ""
    log_stream: str = ""


def gpus_needed(td: Any, node: Node, is_check: bool) -> int:
    if is_check:
        return node.spec.gpus  # the check examines every GPU of the node, so it needs them all free
    return sum(
        int(r["value"])
        for c in td.container_definitions
        for r in c.get("resourceRequirements") or []
        if r.get("type") == "GPU"
    )


def new_task(
    backend: Any,
    cluster_arn: str,
    td: Any,
    node: Node,
    *,
    requirements: dict[str, Any],
    gpu_ids: list[str],
    at: datetime,
    **task_args: Any,
) -> Any:
    """A RUNNING task on ``node``'s container instance holding ``gpu_ids``, as DescribeTasks reports it."""
    cluster_name = cluster_arn.rsplit("/", maxsplit=1)[-1]
    task: Any = Task(
        backend.clusters[cluster_name], td, node.ci.container_instance_arn, requirements, backend=backend,
        launch_type="EC2", **task_args,
    )  # fmt: skip
    for container in task.containers:
        # moto derives both ARNs from the task definition; AWS scopes containers under the task.
        container.task_arn = task.task_arn
        container.container_arn = (
            f"{cluster_arn.split(':cluster/', maxsplit=1)[0]}:container/{cluster_name}/{task.id}/"
            f"{container.container_arn.rsplit('/', maxsplit=1)[-1]}"
        )
        container.health_status = "UNKNOWN"  # no health check defined
        container.exitCode = None  # a running container has no exit code yet
        container.last_status = "RUNNING"
        container.gpu_ids = gpu_ids
        container.runtime_id = hashlib.sha256(container.container_arn.encode()).hexdigest()
        container.reason = None
    task.desired_status = "RUNNING"
    task.stopped_reason = None
    task.stop_code = None
    task.availability_zone = node.ci.attributes.get("ecs.availability-zone")
    task.connectivity = "CONNECTED"
    task.created_at = task.connectivity_at = task.pull_started_at = task.pull_stopped_at = at
    task.started_at = at
    task.cpu = str(td.cpu or int(requirements.get("CPU") or 0))
    task.memory = str(td.memory or int(requirements.get("MEMORY") or 0))
    task.version = 1
    return task


def mark_stopped(
    st: SimTask, stop_code: str, reason: str, *, exit_code: int | None, container_reason: str | None, when: datetime
) -> None:
    task = st.task
    task.last_status = "STOPPED"
    task.desired_status = "STOPPED"
    task.stop_code = stop_code
    task.stopped_reason = reason
    task.stopping_at = task.stopped_at = task.execution_stopped_at = when
    for container in task.containers:
        container.last_status = "STOPPED"
        container.exitCode = exit_code
        container.reason = container_reason
    task.version += 1


def adjust_resources(node: Node, st: SimTask, sign: int) -> None:
    """Keep DescribeContainerInstances' remaining resources and running count in step with our tasks."""
    if sign > 0:
        node.free_gpus = [g["uuid"] for g in node.inventory if g["uuid"] in set(node.free_gpus) | set(st.gpu_ids)]
    for resource in node.ci.remaining_resources:
        if resource["name"] == "CPU":
            resource["integerValue"] += sign * st.cpu
        elif resource["name"] == "MEMORY":
            resource["integerValue"] += sign * st.memory
        elif resource["name"] == "GPU":
            resource["stringSetValue"] = list(node.free_gpus)
    node.ci.running_tasks_count -= sign


def stop_timeout(td: Any) -> float:
    """Seconds ECS waits between SIGTERM and SIGKILL: the container's ``stopTimeout``, else the agent's
    ECS_CONTAINER_STOP_TIMEOUT default of 30 s (task definition parameters, "Container timeouts")."""
    timeouts = [c["stopTimeout"] for c in td.container_definitions if c.get("stopTimeout")]
    return float(timeouts[0]) if timeouts else DEFAULT_STOP_TIMEOUT_SECONDS


def diag_level(td: Any, overrides: dict[str, Any], default: int) -> int:
    """The -r level of the check: a command override wins over the task definition's command."""
    command = td.container_definitions[0].get("command") or []
    for override in overrides.get("containerOverrides") or []:
        command = override.get("command") or command
        for env in override.get("environment") or []:
            if env.get("name") == "DCGM_DIAG_LEVEL":
                return int(env["value"])
    for flag, value in itertools.pairwise(command):
        if flag in ("-r", "--run") and str(value).isdigit():
            return int(value)
    return default
