"""What a scenario declares about the simulated fleet: nodes, their faults, the jobs on them, timings."""

from __future__ import annotations

from dataclasses import dataclass, field

from gpu_recovery.sim.faults import FAULTS

FAULT_KINDS = frozenset(FAULTS)
PERSISTENCES = frozenset({"transient", "persistent", "flapping"})


@dataclass
class FaultSpec:
    """A fault on one node.

    ``transient`` faults are cleared by a reboot, ``persistent`` ones survive it, ``flapping`` ones are cleared
    by a reboot and come back after ``flap_after_checks`` healthy DCGM checks (or ``flap_after_seconds`` of
    simulated time after the reboot, when set).
    """

    kind: str
    persistence: str = "transient"
    gpus: list[int] = field(default_factory=lambda: [0])
    flap_after_checks: int = 1
    flap_after_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if self.persistence not in PERSISTENCES:
            raise ValueError(f"unknown persistence {self.persistence!r}; expected one of {sorted(PERSISTENCES)}")
        if not self.gpus:
            raise ValueError("a fault affects at least one GPU index")
        if self.flap_after_checks < 1:
            raise ValueError("flap_after_checks must be >= 1")


@dataclass
class NodeSpec:
    name: str
    gpus: int = 8
    instance_type: str = "p4d.24xlarge"
    fault: FaultSpec | None = None

    def __post_init__(self) -> None:
        if self.gpus < 1:
            raise ValueError(f"node {self.name}: gpus must be >= 1")
        if self.fault and any(not 0 <= g < self.gpus for g in self.fault.gpus):
            raise ValueError(f"node {self.name}: fault GPU indexes {self.fault.gpus} out of range 0..{self.gpus - 1}")


@dataclass
class JobSpec:
    """A distributed job: ``tasks_per_node`` tasks on each of ``nodes``, each holding ``gpus_per_task`` GPUs
    (None: the node's GPUs split evenly between its tasks)."""

    name: str
    nodes: list[str]
    tasks_per_node: int = 1
    gpus_per_task: int | None = None


@dataclass
class Timings:
    """Simulated seconds a DCGM check runs, a reboot keeps the ECS agent away and a GPU reset takes."""

    diag_seconds: float = 120.0
    reboot_seconds: float = 240.0
    reset_seconds: float = 15.0
