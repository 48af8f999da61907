"""`gpu-recovery show`: one execution as a console-like view."""

from __future__ import annotations

import argparse
import json
from typing import Any

from gpu_recovery import aws_context, timeline
from gpu_recovery.aws_context import AwsContext
from gpu_recovery.cli_output import (
    FAILED,
    OK,
    USAGE,
    CommandError,
    command,
    format_duration,
    format_time,
    print_json,
    truncate,
)
from gpu_recovery.executions import actions, summarize, verdicts
from gpu_recovery.history import Failure, History, fetch, parse_json, read
from recovery.notify import console_url, error_summary

NAME = "show"
# Where the definition sends every unexpected error (statemachine/recovery.asl.json).
ERROR_HANDLER = "HandleError"


def execution_arn(context: AwsContext, name_or_arn: str) -> str:
    if name_or_arn.startswith("arn:"):
        if ":execution:" not in name_or_arn:
            raise CommandError(f"{name_or_arn!r} is not an execution ARN (arn:aws:states:…:execution:…)", USAGE)
        return name_or_arn
    # An execution ARN is the state machine's with `stateMachine` → `execution` and the name appended.
    return context.state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name_or_arn


def describe(context: AwsContext, arn: str) -> dict[str, Any]:
    try:
        return dict(context.sfn.describe_execution(executionArn=arn))
    except context.sfn.exceptions.ExecutionDoesNotExist:
        raise CommandError(f"no execution {arn}", FAILED) from None
    except context.sfn.exceptions.InvalidArn as error:
        raise CommandError(f"invalid execution ARN {arn}: {error}", USAGE) from None


def _offset(walked: History, moment: Any) -> str:
    if moment is None or walked.started is None:
        return "-"
    return "+" + format_duration((moment - walked.started).total_seconds())


def path_lines(walked: History) -> list[str]:
    """Top-level states in order; under each Map state its iterations, each labelled by its node or task."""
    labels = walked.labels()
    lines = [f"  {'AT':>8}  {'TOOK':>7}  STATE"]

    def line(visit: Any, indent: int) -> str:
        took = format_duration(visit.seconds) if visit.exited else "…"
        return f"  {_offset(walked, visit.entered):>8}  {took:>7}  {'  ' * indent}{visit.name}"

    def emit(scope: tuple[Any, ...], depth: int) -> None:
        for visit in [v for v in walked.visits if v.scope == scope]:
            lines.append(line(visit, depth))
            if visit.kind != "Map":
                continue
            depth_here = len(scope)
            iterations = sorted(
                {
                    v.scope[: depth_here + 1]
                    for v in walked.visits
                    if len(v.scope) > depth_here
                    and v.scope[:depth_here] == scope
                    and v.scope[depth_here][0] == visit.name
                },
                key=lambda s: s[-1][1],
            )
            for iteration in iterations:
                lines.append(f"  {'':>8}  {'':>7}  {'  ' * (depth + 1)}[{labels.get(iteration, '?')}]")
                emit(iteration, depth + 2)

    emit((), 0)
    return lines


def view(description: dict[str, Any], walked: History, full: bool) -> str:
    summary = summarize(description)
    output = parse_json(description.get("output"))
    output = output if isinstance(output, dict) else {}
    request = parse_json(description.get("input")) or {}
    first = walked.visits[0].output if walked.visits and isinstance(walked.visits[0].output, dict) else {}
    classified = output or first
    cause_limit = 0 if full else 300
    out = [
        f"Execution  {description['name']}",
        f"ARN        {description['executionArn']}",
        f"Status     {description['status']}  (started {format_time(description.get('startDate'))}, "
        f"took {format_duration(summary['durationSeconds'])})",
        f"Console    {console_url(description['executionArn'])}",
    ]
    if isinstance(request, dict) and "detail" in request:
        detail = request["detail"]
        out.append(f"Input      ECS event v{detail.get('version')} for task {detail.get('taskArn')}")
    elif isinstance(request, dict):
        dry = " (dry run)" if request.get("dryRun") else ""
        out.append(f"Input      manual{dry}: task {request.get('taskArn')}, reason {request.get('reason')!r}")
    if classified.get("decision"):
        out.append(f"Decision   {classified['decision']}: {classified.get('reason', '')}")
    job = classified.get("job") or {}
    if job:
        nodes = ", ".join(n.get("ec2InstanceId", "?") for n in job.get("nodes", []))
        out.append(f"Job        {job.get('jobId')}  tasks {len(job.get('tasks', []))}  nodes {nodes or '-'}")
    if isinstance(output.get("outcome"), dict):
        outcome = output["outcome"]
        out.append(f"Outcome    {outcome.get('outcome')}: {outcome.get('reason', '')}")
    elif summary["outcome"] not in ("-", None):
        out.append(f"Outcome    {summary['outcome']}")

    out += ["", "Path", *path_lines(walked)]
    out += ["", "Timeline (states that took at least 2% of the time)", timeline.text(timeline.from_history(walked))]
    return "\n".join(out + sections(walked, output, cause_limit))


def sections(walked: History, output: dict[str, Any], cause_limit: int) -> list[str]:
    """Verdicts, node results, actions and errors."""
    out: list[str] = []
    found = verdicts(walked.visits)
    if found:
        out += ["", "Verdicts (AnalyzeDiag)"]
        for v in found:
            out.append(
                f"  {v['node']}  {v['phase']:<12}  {v['status']}/{v['action']}  exit {v['exitCode']}"
                f"  -> {v['next']}: {v['reason']}"
            )
            out += [f"      reason: {r}" for r in v["reasons"]]
            out += [f"      finding: {truncate(json.dumps(f, sort_keys=True), 200)}" for f in v["findings"]]
    results = output.get("nodeResults") or []
    if results:
        out += ["", "Node results"]
        for r in results:
            out.append(f"  {r.get('nodeId')}  {r.get('outcome')}: {r.get('reason', '')}")
            out += [f"      {a}" for a in r.get("actions", [])]
    taken = actions(walked.visits)
    if taken:
        out += ["", "Actions"]
        for a in taken:
            target = f" {a['target']}" if a["target"] else ""
            state = "" if a["done"] else " (not finished)"
            detail = f" — {a['detail']}" if a["detail"] else ""
            out.append(f"  {_offset(walked, a['at']):>8}  {a['action']}{target}{state}{detail}")
    labels = walked.labels()
    errors, handled = [], []
    for failure in walked.failures:
        where = (failure.state or "execution") + (f" [{labels.get(failure.scope, '?')}]" if failure.scope else "")
        what = failure.cause if cause_limit == 0 else error_summary(failure.error, failure.cause)
        went_to = handler_of(walked, failure)
        if went_to is None:
            errors.append(f"  {_offset(walked, failure.at):>8}  {where}: {what}")
        else:
            handled.append(f"  {_offset(walked, failure.at):>8}  {where}: {what} -> {went_to}")
    if errors:
        out += ["", "Errors", *errors]
    if handled:
        out += ["", "Handled by the workflow (caught or retried, not errors)", *handled]
    return out


def handler_of(walked: History, failure: Failure) -> str | None:
    """The state the workflow went on with after a caught or retried failure; None when the failure is a real
    error: the execution failed, or the error went to HandleError."""
    if not failure.caught:
        return None
    after = [v for v in walked.visits if v.entered >= failure.at and v.scope == failure.scope[: len(v.scope)]]
    successor = after[0] if after else None
    if successor is None or successor.name == ERROR_HANDLER or successor.kind == "Fail":
        return None
    return successor.name


@command(NAME)
def run(args: argparse.Namespace) -> int:
    context = AwsContext(args)
    arn = execution_arn(context, args.execution)
    description = describe(context, arn)
    walked = read(fetch(context.sfn, arn))
    if args.json:
        print_json(
            {
                "summary": summarize(description),
                "path": [
                    {
                        "state": v.name,
                        "iteration": walked.labels().get(v.scope) if v.scope else None,
                        "entered": v.entered,
                        "seconds": v.seconds,
                    }
                    for v in walked.visits
                ],
                "verdicts": verdicts(walked.visits),
                "nodeResults": (parse_json(description.get("output")) or {}).get("nodeResults", []),
                "actions": actions(walked.visits),
                "errors": [f.__dict__ | {"scope": walked.labels().get(f.scope)} for f in walked.failures],
            }
        )
        return OK
    print(view(description, walked, args.full))
    if args.timeline:
        timeline.write(args.timeline, timeline.from_history(walked), f"{description['name']} ({description['status']})")
        print(f"Timeline written to {args.timeline}")
    return OK


def register(commands: Any) -> None:
    parser = commands.add_parser(
        NAME,
        help="show one recovery execution: path, timings, verdicts, actions, errors",
        description=(
            "One execution as the console shows it, from its history: the path of states with when each was "
            "entered and how long it took (Map iterations labelled by node), the DCGM verdicts and findings "
            "(AnalyzeDiag), the node results, the actions taken and every error with its cause. "
            "Exit codes: 0 ok, 1 no such execution, 2 usage error."
        ),
    )
    parser.add_argument("execution", metavar="EXECUTION", help="execution name (see `runs`) or ARN")
    parser.add_argument("--full", action="store_true", help="print error causes in full (default: first 300 chars)")
    parser.add_argument("--timeline", metavar="FILE", help="also write the per-node timeline as an SVG file")
    aws_context.add_arguments(parser)
    parser.set_defaults(func=run)
