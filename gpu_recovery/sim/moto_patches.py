"""Where the simulated fleet hooks into moto 5.2.5: one table, one row per moto code path it replaces.

Each row is named after the moto behaviour it corrects, like the engine's corrections (gpu_recovery/engine/), and
``tests/workflow/fleet/test_moto_canaries.py`` has one canary per row, ``test_moto_still_<name>``, that runs plain
moto and shows the behaviour is still there: when a canary fails, moto changed and the row needs a look (or can
go). A patched call that is not about the fleet's own cluster (another backend, another cluster) goes to moto
unchanged. What each row does instead, and the AWS documentation for it: docs/simulated-fleet.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from moto.ec2.models.instances import InstanceBackend
from moto.ecs.models import EC2ContainerServiceBackend
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.moto_api import state_manager
from moto.ssm.models import SimpleSystemManagerBackend

# Our tasks get their own ManagedState model name, so moto never advances them on its own (by default it
# reports every task STOPPED the first time it is described) and other clusters keep moto's default.
TASK_MODEL: Final = "ecs::task::simfleet"
_NEVER: Final = {"progression": "manual", "times": 2**62}
# The canary of holding TASK_MODEL (not an attribute patch, so not a row of MOTO_PATCHES).
TASK_MODEL_CANARY: Final = "stops_a_task_when_it_is_described"


class Fleet(Protocol):
    """What the patches call on the fleet: moto's entry points into it (gpu_recovery.sim.fleet.SimFleet)."""

    def owns(self, backend: Any, cluster: str) -> bool: ...
    def moto_run_task(self, response: EC2ContainerServiceResponse) -> Any: ...
    def moto_describe_tasks(self, ids: list[str]) -> list[Any]: ...
    def moto_list_tasks(self, list_tasks: Callable[..., Any], backend: Any, cluster: str, **params: Any) -> Any: ...
    def moto_stop_task(self, task: str, reason: str) -> Any: ...
    def moto_describe_container_instances(self, describe: Callable[[], Any]) -> Any: ...
    def moto_update_container_instances_state(self, update: Callable[[], Any], ids: list[str], status: str) -> Any: ...
    def moto_instances(self, backend: Any, instance_ids: list[str], action: str) -> None: ...
    def moto_send_command(self, backend: Any, command: Any) -> None: ...
    def moto_command_invocation(self, command_id: str, invocation: dict[str, Any]) -> dict[str, Any]: ...


Wrap = Callable[[Fleet, Callable[..., Any]], Callable[..., Any]]


@dataclass(frozen=True)
class MotoPatch:
    owner: type
    attribute: str
    wrap: Wrap


def _run_task(fleet: Fleet, original: Callable[..., Any]) -> Callable[..., Any]:
    def patched(response: EC2ContainerServiceResponse) -> Any:
        if not fleet.owns(response.ecs_backend, response._get_param("cluster", "default")):
            return original(response)
        return fleet.moto_run_task(response)

    return patched


def _describe_tasks(fleet: Fleet, original: Callable[..., Any]) -> Callable[..., Any]:
    def patched(backend: Any, cluster: str, ids: list[str]) -> Any:
        if not fleet.owns(backend, cluster):
            return original(backend, cluster, ids)
        return fleet.moto_describe_tasks(ids)

    return patched


def _list_tasks(fleet: Fleet, original: Callable[..., Any]) -> Callable[..., Any]:
    names = ["container_instance", "family", "started_by", "service_name", "desiredStatus"]

    def patched(backend: Any, cluster: str | None = None, *args: Any, **kwargs: Any) -> Any:
        if not fleet.owns(backend, cluster or "default"):
            return original(backend, cluster, *args, **kwargs)
        params = dict(zip(names, args, strict=False)) | kwargs
        return fleet.moto_list_tasks(original, backend, cluster or "default", **params)

    return patched


def _stop_task(fleet: Fleet, original: Callable[..., Any]) -> Callable[..., Any]:
    def patched(backend: Any, cluster: str, task: str, reason: str) -> Any:
        if not fleet.owns(backend, cluster):
            return original(backend, cluster, task, reason)
        return fleet.moto_stop_task(task, reason)

    return patched


def _describe_container_instances(fleet: Fleet, original: Callable[..., Any]) -> Callable[..., Any]:
    def patched(backend: Any, cluster: str, ids: list[str]) -> Any:
        if not fleet.owns(backend, cluster):
            return original(backend, cluster, ids)
        return fleet.moto_describe_container_instances(lambda: original(backend, cluster, ids))

    return patched


def _update_container_instances_state(fleet: Fleet, original: Callable[..., Any]) -> Callable[..., Any]:
    def patched(backend: Any, cluster: str, ids: list[str], status: str) -> Any:
        if not fleet.owns(backend, cluster):
            return original(backend, cluster, ids, status)
        return fleet.moto_update_container_instances_state(lambda: original(backend, cluster, ids, status), ids, status)

    return patched


def _after_instances(action: str) -> Wrap:
    def wrap(fleet: Fleet, original: Callable[..., Any]) -> Callable[..., Any]:
        def patched(backend: Any, instance_ids: list[str]) -> Any:
            result = original(backend, instance_ids)
            fleet.moto_instances(backend, instance_ids, action)
            return result

        return patched

    return wrap


def _send_command(fleet: Fleet, original: Callable[..., Any]) -> Callable[..., Any]:
    def patched(backend: Any, **kwargs: Any) -> Any:
        named = list(kwargs.get("instance_ids") or [])  # moto extends the caller's list in place
        command = original(backend, **kwargs)
        if not kwargs.get("targets"):
            # moto adds every instance of the region when no Targets are given (an empty EC2 filter matches all);
            # SSM runs the command on the InstanceIds named, and only those.
            command.instance_ids = list(dict.fromkeys(named))
        fleet.moto_send_command(backend, command)
        return command

    return patched


def _get_command_invocation(fleet: Fleet, original: Callable[..., Any]) -> Callable[..., Any]:
    def patched(backend: Any, command_id: str, instance_id: str, plugin_name: str | None) -> Any:
        return fleet.moto_command_invocation(command_id, original(backend, command_id, instance_id, plugin_name))

    return patched


# moto behaviour -> the code path the fleet takes over. The order is the order of application (undone in reverse).
MOTO_PATCHES: Final[dict[str, MotoPatch]] = {
    "ignores_placement_constraints": MotoPatch(EC2ContainerServiceResponse, "run_task", _run_task),
    "describes_tasks_of_other_clusters": MotoPatch(EC2ContainerServiceBackend, "describe_tasks", _describe_tasks),
    "lists_stopped_tasks_by_default": MotoPatch(EC2ContainerServiceBackend, "list_tasks", _list_tasks),
    "stops_a_hung_task_at_once": MotoPatch(EC2ContainerServiceBackend, "stop_task", _stop_task),
    "answers_container_instances_from_its_store": MotoPatch(
        EC2ContainerServiceBackend, "describe_container_instances", _describe_container_instances
    ),
    "drains_a_terminated_instance": MotoPatch(
        EC2ContainerServiceBackend, "update_container_instances_state", _update_container_instances_state
    ),
    "ignores_a_reboot_in_ecs": MotoPatch(InstanceBackend, "reboot_instances", _after_instances("reboot")),
    "ignores_a_termination_in_ecs": MotoPatch(InstanceBackend, "terminate_instances", _after_instances("terminate")),
    "sends_a_command_without_targets_to_every_instance": MotoPatch(
        SimpleSystemManagerBackend, "send_command", _send_command
    ),
    "reports_a_command_successful_at_once": MotoPatch(
        SimpleSystemManagerBackend, "get_command_invocation", _get_command_invocation
    ),
}


def apply(fleet: Fleet) -> Callable[[], None]:
    """Patch moto for ``fleet`` (every row, and the task model held); returns what undoes it all."""
    undo: list[Callable[[], None]] = []

    def undo_all() -> None:
        while undo:
            undo.pop()()

    try:
        for patch in MOTO_PATCHES.values():
            original = getattr(patch.owner, patch.attribute)
            setattr(patch.owner, patch.attribute, patch.wrap(fleet, original))
            undo.append(functools.partial(setattr, patch.owner, patch.attribute, original))
        state_manager.set_transition(TASK_MODEL, _NEVER)
        undo.append(lambda: state_manager.unset_transition(TASK_MODEL))
    except BaseException:
        undo_all()
        raise
    return undo_all
