"""A failing step late in one node's repair stays that node's: its own Catch records what is left to do in the
node's result (the notification names the node and the task), the other nodes go on, and nothing is left drained
without telling someone. A reboot that was recorded but never happened gives its budget back. Faults come from the
scenarios' ``api_faults``, so each path runs through the definition's real Retry and Catch blocks."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

from gpu_recovery import scenario as scenarios
from gpu_recovery.api_faults import ApiFault
from gpu_recovery.local_stack import LocalStack
from gpu_recovery.sim import SimFleet
from gpu_recovery.simulate import _fail, deployed

pytestmark = pytest.mark.slow


@dataclasses.dataclass
class Run:
    stack: LocalStack
    fleet: SimFleet
    status: str

    def rows(self, node: str) -> list[dict[str, Any]]:
        node_id = self.fleet.instance_id(node)
        rows = boto3.resource("dynamodb").Table(self.stack.config.NODE_TABLE_NAME).scan()["Items"]
        return sorted((r for r in rows if r["nodeId"] == node_id), key=lambda r: str(r["recordKey"]))

    def state(self, node: str) -> dict[str, Any]:
        return next(r for r in self.rows(node) if r["recordKey"] == "STATE")

    def history(self, node: str) -> list[str]:
        return [str(r["kind"]) for r in self.rows(node) if r["recordKey"] != "STATE"]

    def job(self) -> dict[str, Any]:
        (job,) = boto3.resource("dynamodb").Table(self.stack.config.JOB_TABLE_NAME).scan()["Items"]
        return job

    def report(self) -> tuple[dict[str, Any], str]:
        """The job's notification: its JSON document and its email text."""
        (report,) = self.stack.notifications()
        message = json.loads(report["message"])
        return json.loads(message["default"]), str(message["email"])

    def node_result(self, node: str) -> dict[str, Any]:
        node_id = self.fleet.instance_id(node)
        return next(n for n in self.report()[0]["nodes"]["notHealthy"] if n["nodeId"] == node_id)

    def container_instance_status(self, node: str) -> str:
        (instance,) = boto3.client("ecs").describe_container_instances(
            cluster=self.fleet.cluster_arn, containerInstances=[self.fleet.container_instance_arn(node)]
        )["containerInstances"]
        return str(instance["status"])


@contextmanager
def run(name: str, faults: list[dict[str, Any]], config: dict[str, str] | None = None) -> Iterator[Run]:
    """The shipped scenario `name` (one failure event) with these api_faults and configuration added."""
    base = scenarios.load(name)
    scenario = dataclasses.replace(
        base,
        api_faults=[*base.api_faults, *(ApiFault.model_validate(rule) for rule in faults)],
        config=base.config | (config or {}),
    )
    with deployed(scenario) as (stack, fleet, _clock):
        (event,) = scenario.events
        arn = stack.engine.start_execution(stack.state_machine_arn, "faulted", _fail(fleet, event))
        yield Run(stack, fleet, stack.engine.wait(arn)["status"])


def test_a_reboot_that_never_happened_gives_its_budget_back_and_says_so() -> None:
    # EC2 refuses node-3's reboot (reboot-denied-one-node): it was recorded first, so it had been counted.
    with run("reboot-denied-one-node", []) as r:
        assert r.status == "SUCCEEDED"
        state = r.state("node-3")
        assert state["status"] == "SUSPECT"
        assert state["reboots"] == []  # the budget is what it was before
        assert "lastRebootBy" not in state
        assert "REBOOT" not in r.history("node-3")
        assert "REBOOT_NOT_PERFORMED" in r.history("node-3")
        assert r.container_instance_status("node-3") == "DRAINING"  # drained for a human, and named
        result = r.node_result("node-3")
        assert result["reason"].startswith("reboot not performed: Ec2.")
        assert "reboot 1 of" not in r.report()[1]
        assert r.job()["status"] == "FAILED"


@pytest.mark.parametrize(
    ("name", "faults", "config", "expected"),
    [
        # The 2nd UpdateContainerInstancesState naming node-3 is DrainSuspectNode's (the 1st drained it for the
        # reboot): the node is SUSPECT and recorded, but ECS still places work on it.
        (
            "reboot-denied-one-node",
            [{"api": "ecs:UpdateContainerInstancesState", "error": "access_denied", "rate": 0.5, "node": "node-3"}],
            {},
            ("node-3", "SUSPECT", "drain it"),
        ),
        (
            "reboot-denied-one-node",
            [{"step": "MarkNodeSuspect", "error": "crash", "rate": 1}],
            {},
            ("node-3", "SUSPECT", "record and release it"),
        ),
        (
            "persistent-fault",
            [{"api": "ec2:TerminateInstances", "error": "access_denied", "rate": 1}],
            {"TERMINATE_QUARANTINED": "true"},
            ("node-1", "QUARANTINED", "terminate it"),
        ),
    ],
)
def test_a_failed_late_node_step_is_that_nodes_and_is_reported(
    name: str, faults: list[dict[str, Any]], config: dict[str, str], expected: tuple[str, str, str]
) -> None:
    node, outcome, todo = expected
    with run(name, faults, config) as r:
        assert r.status == "SUCCEEDED"  # the Map, and every other node's repair, went on
        result = r.node_result(node)
        assert result["outcome"] == outcome
        assert result["unfinished"]["todo"].startswith(todo)
        assert result["unfinished"]["error"]
        assert f"LEFT TO DO: {todo}" in r.report()[1]
        assert r.job()["status"] == "FAILED"  # never restarted while a node is left half-done
