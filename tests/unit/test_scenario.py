"""Scenario files as a validated format: unknown keys refused, cross-references checked at load, one line per
problem with its key path, a published JSON Schema that is current, and the expectations a scenario can state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from gpu_recovery import scenario as scenarios
from gpu_recovery.simulate import ExecutionReport, Report, _check

MINIMAL: dict[str, Any] = {
    "name": "minimal",
    "nodes": {"count": 2, "gpus": 8},
    "faults": {"node-1": {"kind": "xid79"}},
    "jobs": [{"name": "job-a", "nodes": ["node-1", "node-2"]}],
    "events": [{"job": "job-a", "node": "node-1"}],
}


def problems(**changes: Any) -> list[str]:
    data = json.loads(json.dumps(MINIMAL)) | changes
    with pytest.raises(scenarios.ScenarioError) as raised:
        scenarios.parse(data, "s.yaml")
    return str(raised.value).splitlines()


@pytest.mark.parametrize("name", scenarios.shipped())
def test_every_shipped_scenario_loads_and_matches_the_published_schema(name: str) -> None:
    loaded = scenarios.load(name)
    assert loaded.nodes
    assert loaded.jobs
    assert loaded.events
    path = next(scenarios.SCENARIO_DIR.glob(f"{name}.yaml"))
    jsonschema.validate(yaml.safe_load(path.read_text()), scenarios.json_schema())


def test_published_schema_is_current() -> None:
    assert scenarios.SCHEMA_FILE.read_text() == scenarios.render_schema(), "run `make generated`"


def test_minimal_scenario_parses_with_defaults() -> None:
    loaded = scenarios.parse(MINIMAL, "s.yaml")
    assert [n.name for n in loaded.nodes] == ["node-1", "node-2"]
    assert loaded.nodes[0].fault is not None
    assert loaded.nodes[0].fault.kind == "xid79"
    assert loaded.nodes[1].fault is None
    assert loaded.events[0].exit_code == 1
    assert loaded.config == {}


def test_misspelt_keys_are_refused_with_their_path() -> None:
    assert problems(expect={"node": {}}) == ["s.yaml: expect.node: unknown key"]
    assert problems(expectations={}) == ["s.yaml: expectations: unknown key"]
    assert problems(events=[{"job": "job-a", "node": "node-1", "exitcode": 2}]) == [
        "s.yaml: events.0.exitcode: unknown key"
    ]
    assert problems(nodes={"count": 2, "gpu": 8}) == ["s.yaml: nodes.gpu: unknown key"]


def test_misspelt_config_name_is_refused_not_silently_ignored() -> None:
    # A misspelt DRY_RUN once let a "dry-run" scenario reboot its node and pass.
    assert problems(config={"DRYRUN": True}) == [
        "s.yaml: config.DRYRUN: not a configuration name (see docs/configuration.md)"
    ]


def test_config_values_are_checked_by_the_deployment_validation() -> None:
    assert problems(config={"DRY_RUN": "maybe", "MAX_REBOOTS_PER_NODE": 99}) == [
        "s.yaml: config.MAX_REBOOTS_PER_NODE: 99 is invalid; allowed: an integer from 0 to 10",
        "s.yaml: config.DRY_RUN: 'maybe' is invalid; allowed: true/false/1/0/yes/no",
    ]


def test_cross_references_are_checked_at_load() -> None:
    assert problems(
        faults={"node-9": {"kind": "xid79"}},
        jobs=[{"name": "job-a", "nodes": ["node-1", "node-3"]}],
        events=[{"job": "job-b", "node": "node-1"}, {"job": "job-a", "node": "node-2", "after": "reboot node-7"}],
        expect={"nodes": {"node-5": {"status": "HEALTHY"}}, "jobs": {"job-z": "RUNNING"}},
    ) == [
        "s.yaml: faults.node-9: no node named 'node-9' (nodes: node-1, node-2)",
        "s.yaml: jobs.0.nodes: no node named 'node-3' (nodes: node-1, node-2)",
        "s.yaml: events.0.job: no job named 'job-b' (jobs: job-a)",
        "s.yaml: events.1.node: job 'job-a' runs on node-1, node-3, not 'node-2'",
        "s.yaml: events.1.after: 'node-7' is no node or job of the scenario",
        "s.yaml: expect.nodes.node-5: no node named 'node-5'",
        "s.yaml: expect.jobs.job-z: no job named 'job-z'",
    ]


def test_state_names_in_expectations_must_exist_in_the_definition() -> None:
    assert problems(expect={"path": ["ClassifyFailure", "LockJobb"], "never": ["RebootInstanse"]}) == [
        "s.yaml: expect.path: no state named 'LockJobb' in recovery.asl.json",
        "s.yaml: expect.never: no state named 'RebootInstanse' in recovery.asl.json",
    ]


def test_values_of_the_wrong_type_or_range_name_their_key() -> None:
    assert problems(nodes=[{"name": "node-1", "gpus": 0}]) == [
        "s.yaml: nodes.0.gpus: Input should be greater than or equal to 1 (got 0)"
    ]
    assert problems(faults={"node-1": {"kind": "xid80"}})[0].startswith("s.yaml: faults.node-1.kind: Input should be")
    assert problems(faults={"node-1": {"kind": "xid79", "gpus": [8]}}) == [
        "s.yaml: faults.node-1.gpus: GPU indexes [8] out of range 0..7"
    ]
    assert problems(jobs=None) == ["s.yaml: jobs: Input should be a valid list (got None)"]


def test_missing_keys_and_non_mappings_are_one_line_each() -> None:
    data = {k: v for k, v in MINIMAL.items() if k != "events"}
    with pytest.raises(scenarios.ScenarioError, match=r"^s.yaml: events: missing$"):
        scenarios.parse(data, "s.yaml")
    with pytest.raises(scenarios.ScenarioError, match="a scenario is a mapping"):
        scenarios.parse([MINIMAL], "s.yaml")


def test_unreadable_yaml_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(scenarios.ScenarioError) as raised:
        scenarios.load(str(bad))
    assert str(raised.value).startswith(f"{bad}: not valid YAML:")
    assert "\n" not in str(raised.value)


def test_a_binary_file_is_one_line(tmp_path: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfename: x\n")
    with pytest.raises(scenarios.ScenarioError, match=r"binary.yaml: not UTF-8 text \(byte 0: invalid start byte\)$"):
        scenarios.load(str(binary))


class _Fleet:
    @staticmethod
    def node_name(node_id: str) -> str:
        return node_id


def _report(**actions: dict[str, int]) -> Report:
    execution = ExecutionReport("e1", "SUCCEEDED", ["ClassifyFailure", "LockJob", "TerminateInstance"], 1, [], 3, {})
    return Report(
        scenario="minimal",
        passed=False,
        failures=[],
        executions=[execution],
        actions={
            k: actions.get(k, {})
            for k in ("reboots", "terminations", "gpu_resets", "tasks_started", "tasks_stopped", "drains")
        },
        notifications=[],
        nodes=[{"nodeId": "node-1", "recordKey": "STATE", "status": "QUARANTINED"}],
        jobs=[{"jobId": "job-a", "status": "RUNNING"}],
        transitions=3,
    )


def test_terminations_tasks_started_and_never_are_checked() -> None:
    loaded = scenarios.parse(
        MINIMAL
        | {
            "expect": {
                "nodes": {"node-1": {"status": "QUARANTINED", "terminations": 0}},
                "jobs": {"job-a": {"status": "RUNNING", "tasks_started": 2}},
                "never": ["TerminateInstance", "RebootInstance"],
            }
        },
        "s.yaml",
    )
    report = _report(terminations={"node-1": 1}, tasks_started={"job-a": 1})
    assert _check(loaded, report, _Fleet()) == [  # type: ignore[arg-type]
        "node node-1: 1 terminations, expected 0",
        "job job-a: 1 tasks_started, expected 2",
        "state TerminateInstance was entered, expected never",
    ]
    assert _check(loaded, _report(tasks_started={"job-a": 2}), _Fleet()) == [  # type: ignore[arg-type]
        "state TerminateInstance was entered, expected never"
    ]
