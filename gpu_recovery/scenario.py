"""Scenario files (YAML or JSON, docs/scenarios.md): the fleet, its faults, the failures to inject,
config overrides, and what must be true at the end."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gpu_recovery.api_faults import ApiFault, parse_api_faults
from gpu_recovery.sim import FaultSpec, JobSpec, NodeSpec, Timings

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"


class ScenarioError(ValueError):
    """A scenario file that cannot be read; the message names the file and the field."""


@dataclass
class FailureEvent:
    """The job's task on `node` dies with `exit_code` at simulated second `at`, or, with `after`
    ("<action> <target>", e.g. "reboot node-1"), as soon as the fleet has seen that action: a cause, not a
    time, so the order of two recoveries does not depend on how fast the machine runs them."""

    job: str
    node: str
    at: float = 0.0
    after: str | None = None
    exit_code: int = 1
    reason: str | None = None
    duplicates: int = 0


@dataclass
class Expectations:
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: dict[str, str] = field(default_factory=dict)
    executions_that_did_work: int | None = None
    notifications: int | None = None
    path: list[str] | None = None
    node_paths: list[list[str]] | None = None


@dataclass
class Scenario:
    name: str
    description: str
    nodes: list[NodeSpec]
    jobs: list[JobSpec]
    events: list[FailureEvent]
    timings: Timings
    config: dict[str, Any]
    expect: Expectations
    api_faults: list[ApiFault] = field(default_factory=list)


def _nodes(raw: Any, faults: dict[str, Any]) -> list[NodeSpec]:
    if isinstance(raw, dict):  # {count: 4, gpus: 8, instance_type: ...}
        count = int(raw.get("count", 1))
        template = {k: v for k, v in raw.items() if k != "count"}
        raw = [{"name": f"node-{i + 1}", **template} for i in range(count)]
    specs = []
    for node in raw:
        fault = faults.get(node["name"]) or node.get("fault")
        specs.append(
            NodeSpec(
                name=node["name"],
                gpus=int(node.get("gpus", 8)),
                instance_type=node.get("instance_type", "p4d.24xlarge"),
                fault=FaultSpec(**fault) if fault else None,
            )
        )
    unknown = set(faults) - {s.name for s in specs}
    if unknown:
        raise ScenarioError(f"faults name unknown nodes {sorted(unknown)}")
    return specs


def parse(data: dict[str, Any], source: str) -> Scenario:
    try:
        nodes = _nodes(data["nodes"], data.get("faults") or {})
        return Scenario(
            name=data["name"],
            description=data.get("description", ""),
            nodes=nodes,
            jobs=[JobSpec(**job) for job in data["jobs"]],
            events=[FailureEvent(**event) for event in data["events"]],
            timings=Timings(**(data.get("timings") or {})),
            config={
                k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in (data.get("config") or {}).items()
            },
            expect=Expectations(**(data.get("expect") or {})),
            api_faults=parse_api_faults(data.get("api_faults") or [], {n.name for n in nodes}),
        )
    except KeyError as error:
        raise ScenarioError(f"{source}: missing field {error.args[0]!r}") from None
    except (TypeError, ValueError) as error:
        raise ScenarioError(f"{source}: {error}") from None


def load(name_or_path: str) -> Scenario:
    """A scenario by file path, or by the name of a file shipped in scenarios/."""
    path = Path(name_or_path)
    if not path.exists():
        matches = sorted(SCENARIO_DIR.glob(f"{name_or_path}.*"))
        if not matches:
            raise ScenarioError(f"no scenario file or shipped scenario named {name_or_path!r} (see {SCENARIO_DIR})")
        path = matches[0]
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ScenarioError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {error}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping")
    return parse(data, str(path))


def shipped() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
