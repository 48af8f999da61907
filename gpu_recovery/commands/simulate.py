"""`gpu-recovery simulate`: the real workflow on the local engine against a simulated GPU fleet."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from typing import Any

from gpu_recovery import scenario as scenarios
from gpu_recovery.report import render


def run(args: argparse.Namespace) -> int:
    from gpu_recovery.simulate import run as run_scenario  # noqa: PLC0415 - moto loads only for this command

    names = args.scenario or scenarios.shipped()
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
    reports = [run_scenario(s, speed=args.speed) for s in loaded]
    if args.json:
        documents = [r.to_json() for r in reports]
        print(json.dumps(documents[0] if len(documents) == 1 else documents, indent=2, default=str))
    else:
        for report in reports:
            print(render(report))
        passed = sum(r.passed for r in reports)
        print(f"{passed} passed, {len(reports) - passed} failed")
    return 0 if all(r.passed for r in reports) else 1


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "simulate",
        help="run the real workflow on the local engine against a simulated GPU fleet",
        description="Run scenarios (default: every shipped one, see scenarios/) and check their expectations.",
    )
    parser.add_argument(
        "--scenario", action="append", metavar="FILE|NAME", help="a scenario file or shipped name (repeatable)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--speed", type=float, default=200.0, help="simulated seconds per real second")
    parser.set_defaults(func=run)
