"""The same scenario gives the same report, byte for byte, however busy the machine is: simulated time moves only
when every participant waits on the clock, and they take turns in an order the simulation alone decides."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from gpu_recovery import scenario as scenarios
from gpu_recovery.simulate import run

pytestmark = pytest.mark.slow

SCENARIOS = [
    # Two recoveries race for one bad node's lock (it failed one run in three on a busy machine before the scheduler).
    "shared-bad-node",
    # Retry paths: injected AWS errors retried with jittered intervals (the jitter comes from the seeded source).
    "api-faults-retried",
    "reboot-denied-one-node",
]


@pytest.fixture
def cpu_hog() -> Iterator[None]:
    """Two processes spinning on the CPU (the machine has two cores), stopped afterwards."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def report_bytes(name: str) -> str:
    return canonical(run(scenarios.load(name)).to_json())


def canonical(report: object) -> str:
    return json.dumps(report, sort_keys=True, default=str)


def fresh_process_report_bytes(name: str) -> str:
    """The report of a process that ran nothing before: what ran earlier in a process must not change a report."""
    out = subprocess.run(
        [sys.executable, "-m", "gpu_recovery.cli", "simulate", "--scenario", name, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    (report,) = json.loads(out.stdout)["scenarios"]
    return canonical(report)


@pytest.mark.parametrize("name", SCENARIOS)
def test_a_scenario_reports_the_same_bytes_under_load(cpu_hog: None, name: str) -> None:
    first = fresh_process_report_bytes(name)
    assert all(report_bytes(name) == first for _ in range(2))


def test_scenarios_run_side_by_side_report_as_run_one_after_another() -> None:
    """`simulate --jobs 2` (what `make demo` does on two cores) runs scenarios in forked worker processes: the
    reports, and their order, are those of running them one after another in this process."""
    names = ["dry-run", "gpu-healthy-app-bug", "lambda-crash-node-suspect"]
    argv = [arg for name in names for arg in ("--scenario", name)]
    out = subprocess.run(
        [sys.executable, "-m", "gpu_recovery.cli", "simulate", *argv, "--json", "--jobs", "2"],
        capture_output=True,
        text=True,
        check=False,
    )
    side_by_side = [canonical(report) for report in json.loads(out.stdout)["scenarios"]]
    assert side_by_side == [report_bytes(name) for name in names]
