"""Transitions and $ per incident by job size: a job of N nodes (1 or 8 tasks per node) alone on its nodes, one
node's GPU falls off the bus (transient XID 79), its task dies; the whole recovery runs through the real
definition and step Lambdas on the local engine (checks of every node, one reboot, the restart of every task).
Also its time to recovery: with every node checked at once it is the one-node recovery's, up to the size where
the healthy nodes' checks, NODE_CHECK_CONCURRENCY at a time, take longer than the bad node's repair
(``recovery_seconds``)."""

from __future__ import annotations

import math
from typing import Any

from gpu_recovery import scenario as scenarios
from infra.config import Config, ConfigError
from recovery.settings import TASK_STOP_POLL_SECONDS

JOB_NODES = (1, 4, 16, 64)
TASKS_PER_NODE = (1, 8)
DIAG_SECONDS = 120.0
REBOOT_SECONDS = 150.0
# The node-lock bound lowered only as far as a job of this size needs to fit the history budget
# (infra/history_budget.py): the incident itself never comes near it.
_FITTING_BOUNDS: tuple[dict[str, int], ...] = ({}, {"NODE_LOCK_MAX_WAITS": 5}, {"NODE_LOCK_MAX_WAITS": 2})


def config_for(job_nodes: int) -> dict[str, Any]:
    """MAX_JOB_NODES = the job's size, with the first bounds whose worst case fits Step Functions' history."""
    for bounds in _FITTING_BOUNDS:
        settings = {"MAX_JOB_NODES": job_nodes, **bounds}
        try:
            Config.load(context=settings)  # refuses bounds whose worst case passes the history limit
        except ConfigError:
            continue
        return settings
    raise ValueError(f"no configured bounds fit a {job_nodes}-node job in one execution's history")


def recovery_seconds(
    job_nodes: int, tasks_per_node: int, diag: float = DIAG_SECONDS, reboot: float = REBOOT_SECONDS
) -> float:
    """The scenario's time to recovery, from the definition's shape: the stop poll (a job with surviving tasks),
    then CheckNodes, which ends with its slowest slot. The bad node holds one of the Map's NODE_CHECK_CONCURRENCY
    slots for check + reboot + check; the other slots check the healthy nodes in waves of one check each. Every
    other state takes no simulated time."""
    concurrency = Config.load(context=config_for(job_nodes)).NODE_CHECK_CONCURRENCY  # at least 2 here
    stop_poll = TASK_STOP_POLL_SECONDS if job_nodes * tasks_per_node > 1 else 0
    healthy_waves = math.ceil((job_nodes - 1) / (concurrency - 1))
    return stop_poll + max(diag + reboot + diag, healthy_waves * diag)


def scenario(job_nodes: int, tasks_per_node: int) -> scenarios.Scenario:
    names = [f"node-{i + 1}" for i in range(job_nodes)]
    data = {
        "name": f"job-{job_nodes}x{tasks_per_node}",
        "description": f"a {job_nodes}-node job, {tasks_per_node} task(s) per node; node-1's GPU falls off the bus",
        "nodes": {"count": job_nodes, "gpus": 8},
        "faults": {"node-1": {"kind": "xid79", "persistence": "transient"}},
        "jobs": [{"name": "job-a", "nodes": names, "tasks_per_node": tasks_per_node}],
        "events": [{"job": "job-a", "node": "node-1", "exit_code": 1}],
        "timings": {"diag_seconds": DIAG_SECONDS, "reboot_seconds": REBOOT_SECONDS},
        "config": config_for(job_nodes),
        "expect": {
            "nodes": {n: {"status": "HEALTHY", "reboots": 1 if n == "node-1" else 0} for n in names},
            "jobs": {"job-a": {"status": "RUNNING", "tasks_started": job_nodes * tasks_per_node}},
            "executions_that_did_work": 1,
            "notifications": 1,
        },
    }
    return scenarios.parse(data, f"bench.job_size {job_nodes}x{tasks_per_node}")
