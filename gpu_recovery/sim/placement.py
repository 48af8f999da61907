"""ECS task placement over GPU instances, as pure functions of what each candidate instance has free.

ECS places a task in four steps (developer guide, "Use strategies to define Amazon ECS task placement"): the
instances with the CPU, GPU and memory the task needs, then those that satisfy the placement constraints, then
the strategies, then the choice. Constraints (``memberOf``) are the fleet's, as they need the instances
themselves; this module decides among the candidates left. Strategies: ``binpack`` on ``cpu``/``memory`` (the
instance with the least of it left that still fits), ``spread`` on ``instanceId``/``host`` (the instance running
the fewest tasks of the task's group: "standalone tasks are spread according to the tasks in the same task
group"), ``random``. A standalone task has no default strategy; without one, and for ``random`` (here:
deterministic), the first fitting candidate in the cluster's order is taken. Failure reasons are the API's
(developer guide, "Amazon ECS API failure reasons"): AGENT, RESOURCE:GPU, RESOURCE:CPU, RESOURCE:MEMORY."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True)
class Candidate:
    arn: str
    agent_connected: bool
    free_gpus: int
    free_cpu: int
    free_memory: int
    group_tasks: int  # RUNNING tasks of the task's group on the instance
    refuses_gpus: bool = False  # a GPU the agent cannot hand out (the fault table's check_unplaceable)


@dataclass(frozen=True)
class Need:
    gpus: int
    cpu: int
    memory: int


def _binpack(field: str) -> Callable[[Candidate], int]:
    return (lambda c: c.free_cpu) if field == "cpu" else (lambda c: c.free_memory)


_STRATEGIES: Final[dict[str, Callable[[str], Callable[[Candidate], int] | None]]] = {
    "binpack": lambda field: _binpack(field) if field in ("cpu", "memory") else None,
    "spread": lambda field: (lambda c: c.group_tasks) if field in ("instanceId", "host") else None,
    "random": lambda _field: None,
}


def refusal(candidate: Candidate, need: Need) -> str | None:
    """Why the task cannot run on this instance, or None."""
    if not candidate.agent_connected:
        return "AGENT"
    if candidate.refuses_gpus or candidate.free_gpus < need.gpus:
        return "RESOURCE:GPU"
    if candidate.free_cpu < need.cpu:
        return "RESOURCE:CPU"
    if candidate.free_memory < need.memory:
        return "RESOURCE:MEMORY"
    return None


def place(
    candidates: Sequence[Candidate], need: Need, strategies: Sequence[dict[str, Any]] = ()
) -> tuple[int | None, list[dict[str, str]]]:
    """The index of the instance the task goes to, or None and one failure per candidate."""
    fitting = [i for i, candidate in enumerate(candidates) if refusal(candidate, need) is None]
    if not fitting:
        return None, [{"arn": c.arn, "reason": str(refusal(c, need))} for c in candidates]
    keys = [key for s in strategies if (key := _STRATEGIES.get(s.get("type", ""), lambda _f: None)(s.get("field", "")))]
    # Strategies apply in the order given; the cluster's order breaks the remaining ties.
    return min(fitting, key=lambda i: (*(key(candidates[i]) for key in keys), i)), []


class UnsupportedExpression(ValueError):
    """A cluster query the simulated fleet does not evaluate (the fleet raises ECS's InvalidParameterException)."""


def member_of(expression: str, instance_id: str, attributes: Mapping[str, str | None]) -> bool:
    """Whether an instance satisfies a ``memberOf`` cluster query, in the forms the stack uses (developer guide,
    "Create expressions to define container instances for Amazon ECS tasks"): ``ec2InstanceId == i-x``,
    ``ec2InstanceId in [..]`` (also spelled ``attribute:ecs.instance-id``), and ``attribute:<name> exists`` /
    ``!exists`` / ``not_exists`` (custom attributes, set with PutAttributes)."""
    subject, _, rest = expression.strip().partition(" ")
    operator, _, argument = rest.strip().partition(" ")
    if subject in ("ec2InstanceId", "attribute:ecs.instance-id"):
        if operator in ("==", "equals"):
            return argument.strip() == instance_id
        if operator == "in":
            return instance_id in [v.strip().strip("'\"") for v in argument.strip().strip("[]").split(",")]
    elif subject.startswith("attribute:") and not argument:
        if operator == "exists":
            return subject.removeprefix("attribute:") in attributes
        if operator in ("!exists", "not_exists"):
            return subject.removeprefix("attribute:") not in attributes
    raise UnsupportedExpression(f"memberOf expression not supported by the simulated fleet: {expression}")
