"""The AWS calls ClassifyFailure makes for one incident, by job size and cluster size: a job of N nodes (1 or 8
tasks per node) in a cluster that other jobs fill, one of its tasks fails, the deployed ClassifyFailure Lambda
is invoked once on the local engine and every AWS call it makes is counted. The count must follow the job,
not the cluster. A job above MAX_JOB_NODES (16 by default) is refused after the lookup and before any write: its
count is the lookup's alone."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import boto3

from gpu_recovery import scenario as scenarios
from gpu_recovery.local_stack import function_name
from gpu_recovery.scenario import Event
from gpu_recovery.simulate import _fail, deployed

JOB_NODES = (1, 4, 16, 64)
CLUSTER_NODES = (64, 128)
TASKS_PER_NODE = (1, 8)


def _scenario(job_nodes: int, tasks_per_node: int, cluster_nodes: int) -> scenarios.Scenario:
    names = [f"node-{i + 1}" for i in range(cluster_nodes)]
    # The measured job first, then jobs of the same size (each its own task definition family) fill the cluster.
    jobs = [
        {"name": f"job-{j + 1}", "nodes": names[start : start + job_nodes], "tasks_per_node": tasks_per_node}
        for j, start in enumerate(range(0, cluster_nodes - job_nodes + 1, job_nodes))
    ]
    data = {"name": "job-scale", "nodes": {"count": cluster_nodes, "gpus": 8}, "jobs": jobs, "events": []}
    return scenarios.parse(data, "bench.job_scale")


def calls(job_nodes: int, tasks_per_node: int, cluster_nodes: int) -> Counter[str]:
    """Every AWS call (service:Operation) of one ClassifyFailure invocation."""
    with deployed(_scenario(job_nodes, tasks_per_node, cluster_nodes)) as (_stack, fleet, _clock):
        event = _fail(fleet, Event(job="job-1", node="node-1"))
        invoke = boto3.client("lambda").invoke
        made: Counter[str] = Counter()

        def count(model: Any, **_: Any) -> None:
            made[f"{model.service_model.service_name}:{model.name}"] += 1

        session = boto3.DEFAULT_SESSION
        assert session is not None
        session.events.register("before-call", count)
        try:
            execution = {"id": "arn:aws:states:us-east-1:123456789012:execution:bench:job-scale", "name": "job-scale"}
            payload = json.dumps({"request": event, "execution": execution})
            response = invoke(FunctionName=function_name("classify_failure"), Payload=payload)
        finally:
            session.events.unregister("before-call", count)
        result = json.loads(response["Payload"].read())
        # A job above MAX_JOB_NODES is refused after the lookup, before anything is written: its lookup is measured.
        found = len(result["job"]["nodes"]) if "job" in result else None
        refused = result.get("errorType") == "JobTooLarge" and f"spans {job_nodes} nodes" in result["errorMessage"]
        if found != job_nodes and not refused:
            raise RuntimeError(f"ClassifyFailure did not find the {job_nodes}-node job: {result}")
        return made


def measure() -> list[dict[str, Any]]:
    rows = []
    for tasks in TASKS_PER_NODE:
        for nodes in JOB_NODES:
            row: dict[str, Any] = {"job_nodes": nodes, "tasks_per_node": tasks}
            for cluster in CLUSTER_NODES:
                made = calls(nodes, tasks, cluster)
                row[f"calls_in_{cluster}_nodes"] = sum(made.values())
                row[f"breakdown_in_{cluster}_nodes"] = dict(sorted(made.items()))
            rows.append(row)
    return rows
