"""Storm scenarios: a cluster of N 8-GPU nodes, 8 single-GPU tasks per node, jobs of 4 nodes, one node in ten
faulty (a transient XID kills its job's task), and every failure event delivered twice.

``python -m bench.storm 125`` prints the scenario as YAML (scenarios/storms/storm-125.yaml is its output); the
benchmark's scaling curve builds the other sizes the same way."""

from __future__ import annotations

import argparse
import itertools
from typing import Any

import yaml

from gpu_recovery import scenario as scenarios

NODES_PER_JOB = 4
TASKS_PER_NODE = 8
FAULTY_EVERY = 10  # node 3, 13, 23, ... : one in ten, each in a different job
FAULT_KINDS = ("xid79", "xid74", "xid119")


def storm(nodes: int) -> dict[str, Any]:
    names = [f"node-{i + 1}" for i in range(nodes)]
    jobs = [
        {"name": f"job-{j + 1}", "nodes": names[start : start + NODES_PER_JOB], "tasks_per_node": TASKS_PER_NODE}
        for j, start in enumerate(range(0, nodes, NODES_PER_JOB))
    ]
    job_of = {name: f"job-{i // NODES_PER_JOB + 1}" for i, name in enumerate(names)}
    faulty = names[2::FAULTY_EVERY]
    kinds = itertools.cycle(FAULT_KINDS)
    return {
        "name": f"storm-{nodes}",
        "description": (
            f"{nodes} nodes, {TASKS_PER_NODE} tasks per node, {len(faulty)} faulty nodes ({FAULTY_EVERY} %): each "
            "faulty node's task dies at the same moment and its event arrives twice. Every faulty node is repaired "
            "once, no healthy node is drained or rebooted, no job fails."
        ),
        "nodes": {"count": nodes, "gpus": 8},
        "faults": {node: {"kind": next(kinds), "persistence": "transient"} for node in faulty},
        "jobs": jobs,
        "events": [{"job": job_of[node], "node": node, "exit_code": 1, "duplicates": 1} for node in faulty],
        "timings": {"reboot_seconds": 150},
        "expect": {
            "nodes": {
                node: {"status": "HEALTHY", "reboots": 1 if node in faulty else 0}
                for node in names
                if node in faulty or job_of[node] in {job_of[f] for f in faulty}
            },
            "jobs": {job_of[node]: "RUNNING" for node in faulty},
            "executions_that_did_work": len(faulty),
        },
    }


def load(name: str) -> scenarios.Scenario:
    """A shipped scenario, a scenario file, or ``storm-N``."""
    size = name.removeprefix("storm-")
    return scenarios.parse(storm(int(size)), name) if size.isdigit() else scenarios.load(name)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.storm", description=__doc__)
    parser.add_argument("nodes", type=int)
    print(yaml.safe_dump(storm(parser.parse_args().nodes), sort_keys=False, width=120, default_flow_style=None), end="")


if __name__ == "__main__":
    main()
