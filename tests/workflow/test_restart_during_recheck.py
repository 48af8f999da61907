"""A restart that runs while another job's node waits, reactivated, for its re-check (scenarios/
restart-during-recheck.yaml): the under-repair constraint of RestartJob keeps the task off that node. Without the
constraint the same run puts the task on the node and the node's re-check can no longer be placed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import restart_job

from gpu_recovery import scenario as scenarios
from gpu_recovery.report import Report
from gpu_recovery.sim import SimFleet
from gpu_recovery.simulate import run
from recovery.relaunch import UNDER_REPAIR_ATTRIBUTE

pytestmark = pytest.mark.slow

SCENARIO = "restart-during-recheck"
RECHECKED = "node-1"  # job-a's node, reactivated for its re-check
RESTARTED = "job-b"


@dataclass(frozen=True)
class Placement:
    """One placement of a job-b task, with what node-1 looked like at that moment."""

    at: float
    recheck_node_status: str
    recheck_node_marked: bool
    recheck_node_free_gpus: int
    recheck_node_gpus: int
    placed_on: str | None


def _run_watching_placements(monkeypatch: pytest.MonkeyPatch) -> tuple[Report, list[Placement]]:
    placements: list[Placement] = []
    choose = SimFleet._choose_node

    def watched(fleet: SimFleet, *args: Any, group: str, is_check: bool) -> Any:
        node, failures = choose(fleet, *args, group=group, is_check=is_check)
        if group == RESTARTED and not is_check:
            recheck = fleet._nodes[RECHECKED]
            placements.append(
                Placement(
                    at=fleet.clock.elapsed(),
                    recheck_node_status=recheck.ci.status,
                    recheck_node_marked=UNDER_REPAIR_ATTRIBUTE in recheck.ci.attributes,
                    recheck_node_free_gpus=len(recheck.free_gpus),
                    recheck_node_gpus=recheck.spec.gpus,
                    placed_on=None if node is None else node.spec.name,
                )
            )
        return node, failures

    monkeypatch.setattr(SimFleet, "_choose_node", watched)
    return run(scenarios.load(SCENARIO)), placements


def _moments(report: Report, action: str, target: str) -> list[float]:
    return [row["sim_seconds"] for row in report.timeline if (row["action"], row["target"]) == (action, target)]


def test_a_restart_during_a_recheck_goes_elsewhere_and_the_recheck_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    report, placements = _run_watching_placements(monkeypatch)
    assert report.passed, "\n".join(report.failures)
    # The overlap happened: job-b's restart was placed while node-1 was ACTIVE again after its reboot, marked
    # under repair, every GPU free, and its re-check not yet started.
    launch, placement = placements  # the fleet's own launch of job-b, then the restart
    assert launch.placed_on == "node-2"
    reactivated = _moments(report, "set_active", RECHECKED)
    first_check, recheck = _moments(report, "dcgm_check_started", RECHECKED)
    assert reactivated == [placement.at]
    assert first_check < placement.at < recheck
    assert (placement.recheck_node_status, placement.recheck_node_marked) == ("ACTIVE", True)
    assert placement.recheck_node_free_gpus == placement.recheck_node_gpus
    # ... and went back to node-2 although node-1 comes first in the cluster's order.
    assert placement.placed_on == "node-2"
    assert report.actions["reboots"] == {"node-1": 1, "node-2": 1}
    assert report.actions["dcgm_checks"] == {"node-1": 2, "node-2": 2}
    assert "node-3" not in report.actions["drains"] | report.actions["dcgm_checks"]
    assert {row["jobId"]: row["status"] for row in report.jobs} == {"job-a": "RUNNING", "job-b": "RUNNING"}


def test_without_the_constraint_the_restart_takes_the_node_and_its_recheck_cannot_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    build = restart_job.run_task_request

    def unconstrained(*args: Any) -> tuple[dict[str, Any] | None, str]:
        request, problem = build(*args)
        if request is not None:
            del request["placementConstraints"]
        return request, problem

    monkeypatch.setattr(restart_job, "run_task_request", unconstrained)
    report, placements = _run_watching_placements(monkeypatch)
    _launch, placement = placements
    assert (placement.recheck_node_status, placement.recheck_node_marked, placement.placed_on) == (
        "ACTIVE",
        True,
        RECHECKED,
    )
    # node-1's re-check never ran: its RunTask found too few GPUs free, again after the wait for one more check.
    assert report.actions["dcgm_checks"]["node-1"] == 1
    (suspect,) = [row for row in report.nodes if row["recordKey"] == "STATE" and row["status"] == "SUSPECT"]
    assert suspect["lastVerdict"]["status"] == "INCONCLUSIVE"
    assert '"Reason": "RESOURCE:GPU"' in suspect["lastVerdict"]["reasons"][0]
    assert {row["jobId"]: row["status"] for row in report.jobs}["job-a"] == "FAILED"
