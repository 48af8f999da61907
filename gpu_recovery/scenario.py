"""Scenario files (YAML or JSON, docs/scenarios.md): the fleet, its faults, the failures to inject,
config overrides, and what must be true at the end.

The file format is the pydantic model `ScenarioFile`: unknown keys are refused, every cross-reference (a job's
nodes, an event's job and node, a fault's node, a config name and its value, a state name) is checked when the
file is loaded, and each problem is reported as one line with its key path. `scenarios/scenario.schema.json`
is generated from the same model (`make generated`), so editors complete and check scenario files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from gpu_recovery.api_faults import ApiFault
from gpu_recovery.asl import definition, walk_states
from gpu_recovery.resources import DEFINITION, SCENARIO_DIR
from gpu_recovery.sim.specs import FAULT_KINDS, PERSISTENCES, FaultSpec, JobSpec, NodeSpec, Timings
from infra.config import Config

SCHEMA_FILE = SCENARIO_DIR / "scenario.schema.json"
# Keys of the validated union types, which pydantic adds to error locations; an operator never wrote them.
_NODES_LIST, _NODES_COUNT, _JOB_STATUS, _JOB_DETAIL = "list", "count", "status-only", "detail"
_UNION_TAGS = frozenset({_NODES_LIST, _NODES_COUNT, _JOB_STATUS, _JOB_DETAIL})


class ScenarioError(ValueError):
    """A scenario file that cannot be used; one line per problem, each naming the file and the key path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fault(_Strict):
    """A fault on one node; kinds and persistences in docs/simulated-fleet.md."""

    kind: Literal[tuple(sorted(FAULT_KINDS))]  # type: ignore[valid-type]
    persistence: Literal[tuple(sorted(PERSISTENCES))] = "transient"  # type: ignore[valid-type]
    gpus: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [0], min_length=1)
    flap_after_checks: int = Field(default=1, ge=1)
    flap_after_seconds: float | None = Field(default=None, gt=0)

    def spec(self) -> FaultSpec:
        return FaultSpec(**self.model_dump())


class Node(_Strict):
    name: str = Field(min_length=1)
    gpus: int = Field(default=8, ge=1)
    instance_type: str = "p4d.24xlarge"
    fault: Fault | None = None


class NodeCount(_Strict):
    """`count` nodes alike, named node-1 ... node-N."""

    count: int = Field(default=1, ge=1)
    gpus: int = Field(default=8, ge=1)
    instance_type: str = "p4d.24xlarge"

    def expand(self) -> list[Node]:
        return [Node(name=f"node-{i + 1}", gpus=self.gpus, instance_type=self.instance_type) for i in range(self.count)]


class Job(_Strict):
    """A distributed job; its key is the RunTask `group` (= name)."""

    name: str = Field(min_length=1)
    nodes: list[str] = Field(min_length=1)
    tasks_per_node: int = Field(default=1, ge=1)
    gpus_per_task: int | None = Field(default=None, ge=1)


class Event(_Strict):
    """The job's task on `node` dies with `exit_code` at simulated second `at`, or, with `after`
    ("<action> <target>", e.g. "reboot node-1"), as soon as the fleet has seen that action: a cause, not a
    time, so the order of two recoveries does not depend on how fast the machine runs them."""

    job: str
    node: str
    at: float = Field(default=0.0, ge=0)
    after: str | None = Field(default=None, pattern=r"^[a-z_]+ \S+$")
    exit_code: int = 1
    reason: str | None = None
    duplicates: int = Field(default=0, ge=0)


class TimingsModel(_Strict):
    """Simulated seconds a DCGM check runs, a reboot keeps the ECS agent away and a GPU reset takes."""

    diag_seconds: float = Field(default=120.0, gt=0)
    reboot_seconds: float = Field(default=240.0, gt=0)
    reset_seconds: float = Field(default=15.0, gt=0)


class NodeExpectation(_Strict):
    status: str | None = Field(default=None, description="the final ecs_node status")
    reboots: int | None = Field(default=None, ge=0, description="reboots the fleet saw")
    terminations: int | None = Field(default=None, ge=0, description="TerminateInstances of this node the fleet saw")
    gpu_resets: int | None = Field(
        default=None, ge=0, description="GPU resets (SSM nvidia-smi --gpu-reset) of this node"
    )


class JobExpectation(_Strict):
    status: str | None = Field(default=None, description="the final ecs_job status")
    tasks_started: int | None = Field(default=None, ge=0, description="tasks the recovery started for this job")
    tasks_stopped: int | None = Field(default=None, ge=0, description="tasks the recovery stopped of this job")


def _job_form(value: Any) -> str:
    return _JOB_STATUS if isinstance(value, str) else _JOB_DETAIL


def _nodes_form(value: Any) -> str:
    return _NODES_LIST if isinstance(value, list) else _NODES_COUNT


class Expectations(_Strict):
    nodes: dict[str, NodeExpectation] = Field(default_factory=dict)
    # `job: STATUS` is short for `job: {status: STATUS}`.
    jobs: dict[
        str,
        Annotated[
            Annotated[str, Tag(_JOB_STATUS)] | Annotated[JobExpectation, Tag(_JOB_DETAIL)], Discriminator(_job_form)
        ],
    ] = Field(default_factory=dict)
    executions_that_did_work: int | None = Field(default=None, ge=0)
    notifications: int | None = Field(default=None, ge=0)
    path: list[str] | None = None
    node_paths: list[list[str]] | None = None
    never: list[str] = Field(
        default_factory=list, description="states no execution may enter (e.g. RebootInstance, TerminateInstance)"
    )

    def job(self, name: str) -> JobExpectation:
        wanted = self.jobs[name]
        return JobExpectation(status=wanted) if isinstance(wanted, str) else wanted


class ScenarioFile(_Strict):
    """A scenario file as written (docs/scenarios.md)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="ECS GPU Recovery scenario",
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema"},
    )

    name: str = Field(min_length=1)
    description: str = ""
    nodes: Annotated[
        Annotated[list[Node], Tag(_NODES_LIST)] | Annotated[NodeCount, Tag(_NODES_COUNT)], Discriminator(_nodes_form)
    ]
    faults: dict[str, Fault] = Field(default_factory=dict, description="node name: its fault")
    jobs: list[Job] = Field(min_length=1)
    events: list[Event] = Field(min_length=1)
    timings: TimingsModel = TimingsModel()
    config: dict[str, str | int | bool] = Field(
        default_factory=dict, description="overrides of configuration names (docs/configuration.md)"
    )
    expect: Expectations = Expectations()
    api_faults: list[ApiFault] = Field(
        default_factory=list, description="AWS errors injected into the stack's own calls (docs/scenarios.md)"
    )

    def node_list(self) -> list[Node]:
        return self.nodes if isinstance(self.nodes, list) else self.nodes.expand()

    @model_validator(mode="after")
    def _cross_references(self) -> ScenarioFile:
        problems = list(_reference_problems(self))
        if problems:
            raise ValueError("\n".join(problems))
        return self


def _node_problems(scenario: ScenarioFile, nodes: dict[str, Node]) -> list[str]:
    """Node names used twice, and faults on no node or on GPUs the node does not have."""
    problems: list[str] = []
    seen: set[str] = set()
    for i, node in enumerate(scenario.node_list()):
        if node.name in seen:
            problems.append(f"nodes.{i}.name: {node.name!r} is used twice")
        seen.add(node.name)
        if node.fault and node.name in scenario.faults:
            problems.append(f"faults.{node.name}: node {node.name!r} already has a fault in nodes")
    for name, fault in scenario.faults.items():
        where = f"faults.{name}"
        if name not in nodes:
            problems.append(f"{where}: no node named {name!r} (nodes: {', '.join(nodes)})")
        elif bad := [g for g in fault.gpus if g >= nodes[name].gpus]:
            problems.append(f"{where}.gpus: GPU indexes {bad} out of range 0..{nodes[name].gpus - 1}")
    for i, node in enumerate(scenario.node_list()):
        if node.fault and (bad := [g for g in node.fault.gpus if g >= node.gpus]):
            problems.append(f"nodes.{i}.fault.gpus: GPU indexes {bad} out of range 0..{node.gpus - 1}")
    return problems


def _reference_problems(scenario: ScenarioFile) -> list[str]:
    """Every cross-reference that does not hold, as `key.path: what is wrong`."""
    nodes = {n.name: n for n in scenario.node_list()}
    jobs = {j.name: j for j in scenario.jobs}
    states = _state_names()
    problems = _node_problems(scenario, nodes)
    for i, job in enumerate(scenario.jobs):
        problems += [
            f"jobs.{i}.nodes: no node named {n!r} (nodes: {', '.join(nodes)})" for n in job.nodes if n not in nodes
        ]
        if job.gpus_per_task:
            problems += [
                f"jobs.{i}: {job.tasks_per_node} tasks x {job.gpus_per_task} GPUs do not fit node {n!r} "
                f"({nodes[n].gpus} GPUs)"
                for n in job.nodes
                if n in nodes and job.tasks_per_node * job.gpus_per_task > nodes[n].gpus
            ]
    for i, event in enumerate(scenario.events):
        target = jobs.get(event.job)
        if target is None:
            problems.append(f"events.{i}.job: no job named {event.job!r} (jobs: {', '.join(jobs)})")
        elif event.node not in target.nodes:
            problems.append(f"events.{i}.node: job {event.job!r} runs on {', '.join(target.nodes)}, not {event.node!r}")
        if event.after and event.after.split(" ", 1)[1] not in nodes.keys() | jobs.keys():
            problems.append(f"events.{i}.after: {event.after.split(' ', 1)[1]!r} is no node or job of the scenario")
    problems += [
        f"api_faults.{i}.node: no node named {rule.node!r} (nodes: {', '.join(nodes)})"
        for i, rule in enumerate(scenario.api_faults)
        if rule.node is not None and rule.node not in nodes
    ]
    problems += _config_problems(scenario.config)
    expect = scenario.expect
    problems += [f"expect.nodes.{n}: no node named {n!r}" for n in expect.nodes if n not in nodes]
    problems += [f"expect.jobs.{j}: no job named {j!r}" for j in expect.jobs if j not in jobs]
    named_states = [("expect.path", s) for s in expect.path or []]
    named_states += [(f"expect.node_paths.{i}", s) for i, p in enumerate(expect.node_paths or []) for s in p]
    named_states += [("expect.never", s) for s in expect.never]
    problems += [f"{where}: no state named {s!r} in {DEFINITION.name}" for where, s in named_states if s not in states]
    return problems


def _config_problems(config: dict[str, Any]) -> list[str]:
    """Names and values checked by the deployment's own validation (infra.config), so a scenario cannot
    set what a deployment would refuse, nor misspell a name and silently run with the default."""
    problems = [
        f"config.{name}: not a configuration name (see docs/configuration.md)"
        for name in config
        if name not in Config.names()
    ]
    if problems:
        return problems
    try:
        Config.model_validate(config)
    except ValidationError as error:
        names = [str(e["loc"][0]) for e in error.errors()]
        return [f"config.{n}: {config[n]!r} is invalid; allowed: {Config.allowed(n)}" for n in names]
    try:
        Config.load(context=config)
    except ValueError as error:  # combinations of settings (infra.config.ConfigError)
        return [f"config: {error}"]
    return []


def _state_names() -> frozenset[str]:
    return frozenset(name for name, _ in walk_states(definition()["States"]))


@dataclass
class Scenario:
    """A validated scenario, in the simulated fleet's terms."""

    name: str
    description: str
    nodes: list[NodeSpec]
    jobs: list[JobSpec]
    events: list[Event]
    timings: Timings
    config: dict[str, str]
    expect: Expectations
    api_faults: list[ApiFault]


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc if part not in _UNION_TAGS) or "(top level)"


def _messages(error: ValidationError) -> list[str]:
    lines = []
    for e in error.errors():
        if e["type"] == "value_error" and not e["loc"]:
            lines += str(e["ctx"]["error"]).splitlines()  # the cross-reference lines, already with key paths
        elif e["type"] == "extra_forbidden":
            lines.append(f"{_location(e['loc'])}: unknown key")
        elif e["type"] == "missing":
            lines.append(f"{_location(e['loc'])}: missing")
        elif e["type"] == "value_error":  # a field's own check: its message, without pydantic's "Value error, "
            lines.append(f"{_location(e['loc'])}: {e['ctx']['error']} (got {e['input']!r})")
        else:
            lines.append(f"{_location(e['loc'])}: {e['msg']} (got {e['input']!r})")
    return lines


def parse(data: Any, source: str) -> Scenario:
    """Validate a scenario document; ScenarioError with one `source: key.path: problem` line per problem."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario is a mapping of keys (name, nodes, jobs, events, ...)")
    try:
        model = ScenarioFile.model_validate(data)
    except ValidationError as error:
        raise ScenarioError("\n".join(f"{source}: {line}" for line in _messages(error))) from None
    return Scenario(
        name=model.name,
        description=model.description,
        nodes=[
            NodeSpec(
                name=n.name,
                gpus=n.gpus,
                instance_type=n.instance_type,
                fault=(n.fault or model.faults[n.name]).spec() if (n.fault or n.name in model.faults) else None,
            )
            for n in model.node_list()
        ],
        jobs=[JobSpec(**job.model_dump()) for job in model.jobs],
        events=list(model.events),
        timings=Timings(**model.timings.model_dump()),
        # The deployment reads every setting as a string (context or environment variable).
        config={k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in model.config.items()},
        expect=model.expect,
        api_faults=list(model.api_faults),
    )


def load(name_or_path: str) -> Scenario:
    """A scenario by file path, or by the name of a file shipped in scenarios/."""
    path = Path(name_or_path)
    if not path.is_file():
        matches = sorted(p for p in SCENARIO_DIR.glob(f"{name_or_path}.*") if p != SCHEMA_FILE)
        if not matches:
            raise ScenarioError(f"no scenario file or shipped scenario named {name_or_path!r} (see {SCENARIO_DIR})")
        path = matches[0]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ScenarioError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason})") from None
    reader: Callable[[str], Any] = json.loads if path.suffix == ".json" else yaml.safe_load
    try:
        data = reader(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        flat = " ".join(str(error).split())
        raise ScenarioError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {flat}") from None
    return parse(data, str(path))


def shipped() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of scenario files (scenarios/scenario.schema.json)."""
    return ScenarioFile.model_json_schema(mode="validation")


def render_schema() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
