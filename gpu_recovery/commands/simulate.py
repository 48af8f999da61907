"""`gpu-recovery simulate`: the real workflow on the local engine against a simulated GPU fleet."""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import multiprocessing
import os
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any

from gpu_recovery.cli_arguments import positive_int

if TYPE_CHECKING:  # the runner's modules need the [sim] extra: imported in run() only
    from gpu_recovery.scenario import Scenario
    from gpu_recovery.simulate import Report


def _needs_sim_extra(missing: str) -> int:
    print(
        f"gpu-recovery simulate: needs the [sim] extra ({missing} is not installed): "
        "pipx install 'ecs-gpu-recovery[sim]' (or pip install 'ecs-gpu-recovery[sim]')",
        file=sys.stderr,
    )
    return 1


def run(args: argparse.Namespace) -> int:
    # The scenario models and the runner load moto and the simulated fleet (the [sim] extra): only here.
    try:
        from gpu_recovery import report as reports  # noqa: PLC0415
        from gpu_recovery import scenario as scenarios  # noqa: PLC0415
        from gpu_recovery import timeline  # noqa: PLC0415
        from gpu_recovery.simulate import run as run_scenario  # noqa: PLC0415
    except ModuleNotFoundError as error:
        return _needs_sim_extra((error.name or "").partition(".")[0])  # the package, not the submodule
    # The engine authorizes every call against the synthesized stack: the CDK synthesizes it in a child process
    # (gpu_recovery.stack_policies), so here it is only looked for; jsii runs it on Node.js.
    if importlib.util.find_spec("aws_cdk") is None:
        return _needs_sim_extra("aws_cdk")
    if shutil.which("node") is None:
        print(
            "gpu-recovery simulate: needs Node.js on PATH (the CDK synthesizes the stack whose IAM the local engine "
            "enforces)",
            file=sys.stderr,
        )
        return 1

    names = args.scenario or scenarios.shipped()
    if args.timeline and len(names) != 1:
        print("gpu-recovery simulate: --timeline needs exactly one --scenario", file=sys.stderr)
        return 2
    try:
        loaded = [scenarios.load(name) for name in names]
    except scenarios.ScenarioError as error:
        for line in str(error).splitlines():
            print(f"gpu-recovery simulate: {line}", file=sys.stderr)
        return 2
    # Powertools warns when a step emits no metric; in the simulator metrics are off on purpose.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    # moto logs every exception a state evaluates as an error, even ones the ASL expects (an IsPresent probe of
    # a missing path); real failures are in each execution's history, which the report shows.
    logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(logging.CRITICAL)
    done = []
    for number, report in enumerate(_reports(run_scenario, loaded, args.jobs), 1):
        done.append(report)
        if not args.json:
            # One line as each scenario finishes (the whole set takes minutes); details on request.
            line = reports.render(report) if args.details else reports.progress_line(report, number, len(loaded))
            print(line, flush=True)
    if args.timeline:
        timeline.write(args.timeline, reports.bars(done[0]), f"scenario {done[0].scenario} (simulated time)")
        print(f"Timeline written to {args.timeline}", file=sys.stderr)
    passed = all(r.passed for r in done)
    if args.json:
        print(json.dumps({"passed": passed, "scenarios": [r.to_json() for r in done]}, indent=2, default=str))
    else:
        print()
        print(reports.summary_table(done))
    return 0 if passed else 1


def _reports(run_scenario: Callable[[Scenario], Report], loaded: list[Scenario], jobs: int) -> Iterator[Report]:
    """Each scenario's report, in the scenarios' order. A scenario deploys its own stack on its own ``mock_aws``
    and seeds its own random source, so its report does not depend on the process that runs it or on what ran
    there before (tests/workflow/test_determinism.py): with ``jobs`` > 1 they run in that many worker processes,
    forked from this one so that the imports are done once."""
    workers = min(jobs, len(loaded))
    if workers == 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield from map(run_scenario, loaded)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        yield from pool.map(run_scenario, loaded)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "simulate",
        help="run the real workflow on the local engine against a simulated GPU fleet",
        description=(
            "Run scenarios (default: every shipped one, see scenarios/) and check their expectations: one line "
            "per scenario as it finishes, then a summary table. Exit codes: 0 every expectation held, 1 one did "
            "not, 2 a scenario file is invalid (one line per problem)."
        ),
    )
    parser.add_argument(
        "--scenario", action="append", metavar="FILE|NAME", help="a scenario file or shipped name (repeatable)"
    )
    parser.add_argument(
        "--details", action="store_true", help="print each scenario's executions, actions and final rows"
    )
    parser.add_argument(
        "--timeline", metavar="FILE", help="write the scenario's per-node timeline as an SVG file (one --scenario)"
    )
    parser.add_argument(
        "--jobs",
        type=positive_int,
        # The CPUs this process may run on (os.process_cpu_count from Python 3.13), not all the machine has.
        default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
        metavar="N",
        help="run up to N scenarios at once, each in its own process (default: one per CPU); reports are the same",
    )
    parser.set_defaults(func=run)
