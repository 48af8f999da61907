"""Run a scenario: the real definition and step Lambdas on the local engine, against the simulated fleet.
Events reach the workflow only through the EventBridge rule's pattern, as in AWS."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import groupby
from types import SimpleNamespace
from typing import Any
from unittest import mock

import boto3
from moto.moto_api._internal import mock_random
from moto.stepfunctions.parser import utils as sfn_utils
from moto.stepfunctions.parser.asl.component.common.retry import jitter_strategy_decl

from gpu_recovery.clock import SimClock
from gpu_recovery.engine import LocalEngine
from gpu_recovery.engine.history_path import state_visit
from gpu_recovery.history import History, Visit, map_items, read
from gpu_recovery.local_stack import LocalStack, deploy
from gpu_recovery.scenario import Event, Scenario
from gpu_recovery.sim import SimFleet
from recovery import clock as step_clock
from recovery import tables as step_tables
from recovery.settings import get_settings
from recovery.tables import plain

# The Map state whose iterations check one node each (scenario `node_paths`).
NODE_MAP = "CheckNodes"
# States whose presence means an execution did recovery work (took the job lock).
WORK_STATE = "LockJob"
# A guard against a simulation that hangs (a bug): far above what a storm takes on a busy 2-core machine.
EXECUTION_TIMEOUT_REAL_SECONDS = 1800.0
# A scenario event waiting for a fleet action gives up after a simulated day.
ACTION_WAIT_SIM_SECONDS = 86_400.0
RANDOM_SEED = 13


@dataclass
class ExecutionReport:
    name: str
    status: str
    path: list[str]
    sim_seconds: float
    visits: list[dict[str, Any]]
    transitions: int
    calls: dict[str, int]
    error: str | None = None
    cause: str | None = None
    # DescribeExecution and the history (read) on the simulated clock: what `show` renders (not in the JSON report).
    description: dict[str, Any] = field(default_factory=dict, repr=False)
    history: History = field(default_factory=History, repr=False)


@dataclass
class Report:
    scenario: str
    passed: bool
    failures: list[str]
    executions: list[ExecutionReport]
    actions: dict[str, dict[str, int]]
    notifications: list[dict[str, str]]
    nodes: list[dict[str, Any]]
    jobs: list[dict[str, Any]]
    transitions: int
    timeline: list[dict[str, Any]] = field(default_factory=list)
    filtered_events: int = 0

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        for execution in document["executions"]:
            del execution["description"], execution["history"]
        return document


def _execution_name(event: dict[str, Any], copy: int) -> str:
    detail = event["detail"]
    name = f"{detail.get('group') or 'task'}-{detail['taskArn'].rsplit('/', 1)[-1][:12]}-v{detail['version']}-{copy}"
    return re.sub(r"[^A-Za-z0-9_-]", "-", name)[:80]


def _scan(table: str) -> list[dict[str, Any]]:
    items = boto3.resource("dynamodb").Table(table).scan()["Items"]
    return [plain(item) for item in items]


def _task_kind(event: dict[str, Any]) -> str | None:
    """What a history event asked AWS to do: a Lambda invocation or a service integration call."""
    if event["type"] == "LambdaFunctionScheduled":
        return "lambda:invoke"
    if event["type"] == "TaskScheduled":
        details = event["taskScheduledEventDetails"]
        return f"{details['resourceType']}:{details['resource']}"
    return None


def _item_label(item: Any, fleet: SimFleet) -> str:
    if isinstance(item, dict) and "ec2InstanceId" in item:
        return fleet.node_name(item["ec2InstanceId"])
    return str(item).rsplit("/", 1)[-1][:12]


def _iteration_labels(visits: list[Visit], fleet: SimFleet) -> dict[str, list[str]]:
    """For each Map state the execution entered, a label per iteration: the item it worked on."""
    return {v.name: [_item_label(item, fleet) for item in map_items(v) or []] for v in visits if v.kind == "Map"}


def _item(visit: Visit, labels: dict[str, list[str]]) -> str | None:
    items = labels.get(visit.owner or "", [])
    return items[visit.iteration] if visit.iteration is not None and visit.iteration < len(items) else None


def _report_execution(stack: LocalStack, fleet: SimFleet, arn: str, sim_epoch: datetime) -> ExecutionReport:
    description = stack.wait(arn, EXECUTION_TIMEOUT_REAL_SECONDS)
    events = stack.engine.history(arn)
    visited = read(events)
    labels = _iteration_labels(visited.visits, fleet)
    visits = [(state_visit(v, sim_epoch), _item(v, labels)) for v in visited.visits]
    ends = [v.exited_at_sim for v, _ in visits if v.exited_at_sim is not None]
    return ExecutionReport(
        name=description["name"],
        status=description["status"],
        path=[v.name for v, _ in visits],
        sim_seconds=round(max(ends, default=0.0) - (visits[0][0].entered_at_sim if visits else 0.0), 1),
        visits=[asdict(v) | {"item": item} for v, item in visits],
        transitions=sum(1 for e in events if e["type"].endswith("StateEntered")),
        calls=dict(Counter(kind for e in events if (kind := _task_kind(e)))),
        error=description.get("error"),
        cause=description.get("cause"),
        # moto's start and stop dates are real time; the history is on the simulated clock.
        description=dict(description) | {"startDate": events[0]["timestamp"], "stopDate": events[-1]["timestamp"]},
        history=visited,
    )


def top_level_path(execution: ExecutionReport) -> list[str]:
    """The states outside any Map iteration, in order (what the console graph shows at the top)."""
    return [v.name for v in execution.history.visits if not v.scope]


def node_paths(execution: ExecutionReport) -> list[list[str]]:
    """Each CheckNodes iteration's states (iterations run in parallel: only their set is stable)."""
    by_iteration: dict[int, list[str]] = {}
    for visit in execution.history.visits:
        if visit.owner == NODE_MAP and visit.iteration is not None:
            by_iteration.setdefault(visit.iteration, []).append(visit.name)
    return list(by_iteration.values())


def _check(scenario: Scenario, report: Report, fleet: SimFleet) -> list[str]:
    expect, problems = scenario.expect, []
    nodes = {fleet.node_name(row["nodeId"]): row for row in report.nodes if row["recordKey"] == "STATE"}
    for node, wanted in expect.nodes.items():
        status = nodes.get(node, {}).get("status")
        if wanted.status is not None and status != wanted.status:
            problems.append(f"node {node}: status {status}, expected {wanted.status}")
        for action in ("reboots", "terminations", "gpu_resets"):
            count, expected = report.actions[action].get(node, 0), getattr(wanted, action)
            if expected is not None and count != expected:
                problems.append(f"node {node}: {count} {action}, expected {expected}")
    jobs = {row["jobId"]: row for row in report.jobs}
    for job in expect.jobs:
        wanted_job, status = expect.job(job), jobs.get(job, {}).get("status")
        if wanted_job.status is not None and status != wanted_job.status:
            problems.append(f"job {job}: status {status}, expected {wanted_job.status}")
        for action in ("tasks_started", "tasks_stopped"):
            count, expected = report.actions[action].get(job, 0), getattr(wanted_job, action)
            if expected is not None and count != expected:
                problems.append(f"job {job}: {count} {action}, expected {expected}")
    entered = {state for e in report.executions for state in e.path}
    problems += [f"state {state} was entered, expected never" for state in expect.never if state in entered]
    worked = sum(1 for e in report.executions if WORK_STATE in e.path and "JoinExistingRecovery" not in e.path)
    if expect.executions_that_did_work is not None and worked != expect.executions_that_did_work:
        problems.append(f"{worked} executions did recovery work, expected {expect.executions_that_did_work}")
    if expect.notifications is not None and len(report.notifications) != expect.notifications:
        problems.append(f"{len(report.notifications)} notifications, expected {expect.notifications}")
    working = [e for e in report.executions if WORK_STATE in e.path]
    top_paths = [top_level_path(e) for e in working]
    if expect.path is not None and (not working or any(p != expect.path for p in top_paths)):
        problems.append(f"paths {top_paths}, expected each to be {expect.path}")
    iterations = sorted(p for e in working for p in node_paths(e))
    if expect.node_paths is not None and iterations != sorted(expect.node_paths):
        problems.append(f"node paths {iterations}, expected {expect.node_paths}")
    problems += [
        f"execution {e.name} {e.status}: {e.error}: {e.cause}" for e in report.executions if e.status != "SUCCEEDED"
    ]
    return problems


@contextmanager
def deployed(scenario: Scenario) -> Iterator[tuple[LocalStack, SimFleet, SimClock]]:
    """The scenario's fleet with the stack deployed on the local engine, all on one simulated clock.

    Identifiers are drawn from one seeded source (moto's ``mock_random``, also for the node history keys the
    step Lambdas write), and so is the FULL jitter of the definition's Retry intervals (moto draws it from the
    unseeded ``random`` module, and a retried interval is simulated time), and so are task tokens (moto's
    ``long_uid``, an unseeded uuid4; WaitForAgent's is stored on the node), so that, with the clock's fixed order
    of steps, a scenario reports the same every run."""
    clock = SimClock()
    with (
        LocalEngine(clock) as engine,
        mock.patch.object(step_tables, "uuid", SimpleNamespace(uuid4=mock_random.uuid4)),
        mock.patch.object(jitter_strategy_decl, "random", mock_random),
        mock.patch.object(sfn_utils, "uuid4", mock_random.uuid4),
        mock.patch.object(step_clock, "utcnow", clock.now),
        mock.patch.object(step_clock, "sleep", clock.sleep),
    ):
        mock_random.seed(RANDOM_SEED)
        with SimFleet(clock, "gpu-cluster", scenario.nodes, scenario.jobs, scenario.timings) as fleet:
            # Settings are cached per process; each scenario deploys its own configuration.
            get_settings.cache_clear()
            stack = deploy(engine, fleet, scenario.config)
            nodes = {n.name: (fleet.instance_id(n.name), fleet.container_instance_arn(n.name)) for n in scenario.nodes}
            engine.faults.load(scenario.api_faults, nodes)
            yield stack, fleet, clock


def run(scenario: Scenario) -> Report:
    with deployed(scenario) as (stack, fleet, clock):
        arns: list[str] = []
        filtered = 0
        moments = groupby(sorted(scenario.events, key=lambda e: (e.at, e.after or "")), key=lambda e: (e.at, e.after))
        # The runner takes part in the simulation while it injects failures: no recovery moves while it works, and
        # every task that dies at the same moment dies before any recovery starts.
        with clock.taking_part():
            for (at, after), batch in moments:
                clock.sleep(max(0.0, at - clock.elapsed()))
                if after:
                    _wait_for_action(fleet, after)
                failed = [(spec, _fail(fleet, spec)) for spec in batch]
                for spec, event in failed:
                    for copy in range(1 + spec.duplicates):
                        if stack.matches(event):
                            name = _execution_name(event, copy)
                            arns.append(stack.start_execution(name, event))
        executions = [_report_execution(stack, fleet, arn, clock.start) for arn in arns]
        # Everything the recoveries made ECS emit (stopped siblings, DCGM checks, reboots) goes through the
        # rule too: none of it may start another recovery.
        for event in fleet.drain_events():
            if stack.matches(event):
                executions.append(
                    _report_execution(
                        stack,
                        fleet,
                        stack.start_execution(_execution_name(event, 0), event),
                        clock.start,
                    )
                )
            else:
                filtered += 1
        actions = fleet.actions() | {"gpu_resets": fleet.gpu_resets()}
        nodes = _scan(stack.config.NODE_TABLE_NAME)
        actions["quarantines"] = dict(
            Counter(fleet.node_name(r["nodeId"]) for r in nodes if r.get("kind") == "QUARANTINE")
        )
        report = Report(
            scenario=scenario.name,
            passed=False,
            failures=[],
            executions=executions,
            actions=actions,
            notifications=stack.notifications(),
            nodes=[r for r in nodes if r["recordKey"] == "STATE"] + [r for r in nodes if r["recordKey"] != "STATE"],
            jobs=_scan(stack.config.JOB_TABLE_NAME),
            transitions=sum(e.transitions for e in executions),
            timeline=[
                {"sim_seconds": t, "action": a, "target": target, "detail": d} for t, a, target, d in fleet.timeline()
            ],
            filtered_events=filtered,
        )
        report.failures = _check(scenario, report, fleet)
        report.passed = not report.failures
        return report


def _wait_for_action(fleet: SimFleet, after: str) -> None:
    """Wait (in simulated time) until the fleet's timeline shows `after` ("<action> <target>")."""
    action, _, target = after.partition(" ")
    if not fleet.seen(action, target).wait(ACTION_WAIT_SIM_SECONDS):
        raise TimeoutError(f"the fleet never saw {after!r} in {ACTION_WAIT_SIM_SECONDS:.0f} simulated seconds")


def _fail(fleet: SimFleet, spec: Event) -> dict[str, Any]:
    tasks = fleet.job_tasks(spec.job, spec.node)
    if not tasks:
        raise ValueError(f"job {spec.job} has no running task on {spec.node} at {spec.at}s")
    return fleet.fail_task(tasks[0], exit_code=spec.exit_code, reason=spec.reason)
