"""The simulated GPU fleet: moto's ECS and EC2, patched to behave like AWS for one cluster of GPU nodes."""

from gpu_recovery.sim.dcgm import RESULT_MARKER, parse_envelope
from gpu_recovery.sim.fleet import DCGM_CONTAINER, DCGM_FAMILY, DCGM_LOG_GROUP, SimFleet
from gpu_recovery.sim.specs import FAULT_KINDS, FaultSpec, JobSpec, NodeSpec, Timings

__all__ = [
    "DCGM_CONTAINER",
    "DCGM_FAMILY",
    "DCGM_LOG_GROUP",
    "FAULT_KINDS",
    "RESULT_MARKER",
    "FaultSpec",
    "JobSpec",
    "NodeSpec",
    "SimFleet",
    "Timings",
    "parse_envelope",
]
