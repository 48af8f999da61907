"""Time to recovery against its physical floor, by reboot time: one node with a transient XID 79 is checked
(DCGM diag, DIAG_SECONDS), rebooted (R seconds until its ECS agent is back) and checked again, through the real
definition on the local engine. The floor is diag + R + diag; WaitForAgent waits on a task token that the agent's
reconnect event completes, so the recovery should sit at the floor and its state transitions should not grow
with R."""

from __future__ import annotations

from typing import Any

from gpu_recovery import scenario as scenarios
from gpu_recovery.simulate import WORK_STATE, run

REBOOT_SECONDS = (60, 150, 181, 300, 601, 900)
DIAG_SECONDS = 120


def _scenario(reboot_seconds: int) -> scenarios.Scenario:
    data = {
        "name": f"reboot-{reboot_seconds}s",
        "nodes": {"count": 1, "gpus": 8},
        "faults": {"node-1": {"kind": "xid79", "persistence": "transient", "gpus": [0]}},
        "jobs": [{"name": "job-a", "nodes": ["node-1"]}],
        "events": [{"job": "job-a", "node": "node-1", "exit_code": 1}],
        "timings": {"diag_seconds": DIAG_SECONDS, "reboot_seconds": reboot_seconds},
        "expect": {"nodes": {"node-1": {"status": "HEALTHY", "reboots": 1}}},
    }
    return scenarios.parse(data, "bench.reboot_floor")


def measure() -> list[dict[str, Any]]:
    rows = []
    for reboot in REBOOT_SECONDS:
        report = run(_scenario(reboot))
        working = [e for e in report.executions if WORK_STATE in e.path]
        recovery = max((e.sim_seconds for e in working), default=0.0)
        floor = DIAG_SECONDS + reboot + DIAG_SECONDS
        rows.append(
            {
                "reboot_seconds": reboot,
                "passed": report.passed,
                "recovery_sim_seconds": recovery,
                "floor_seconds": floor,
                "ratio": round(recovery / floor, 3),
                "transitions": report.transitions,
            }
        )
    return rows
