"""The simulate report as an operator reads it: each execution rendered as `show` renders a deployed one (on the
simulated clock), what was done to the fleet, what people were told, and the final table rows."""

from __future__ import annotations

from gpu_recovery import timeline
from gpu_recovery.cli_output import format_duration, render_table
from gpu_recovery.commands.show import view
from gpu_recovery.simulate import WORK_STATE, Report


def render(report: Report) -> str:
    """Each execution as `show` renders one (path with durations, timeline, verdicts, actions, errors), then
    what the scenario did to the fleet, what people were told, the final table rows and failed expectations."""
    lines = [f"=== {report.scenario}: {'PASS' if report.passed else 'FAIL'} ==="]
    for execution in report.executions:
        lines += ["", view(execution.description, execution.history, full=False), ""]
    lines.append("actions:")
    for action, counts in report.actions.items():
        if counts:
            lines.append(f"  {action}: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    lines.append(f"events filtered out by the rule: {report.filtered_events}")
    lines.append("notifications:")
    lines += [f"  {n['subject']}" for n in report.notifications]
    lines.append("ecs_node:")
    for row in report.nodes:
        if row["recordKey"] == "STATE":
            reboots = len(row.get("reboots", []))
            lines.append(f"  {row['nodeId']}: {row.get('status')} ({row.get('reason', '')}) reboots={reboots}")
    lines.append("ecs_job:")
    lines += [f"  {row['jobId']}: {row.get('status')} ({row.get('lastReason', '')})" for row in report.jobs]
    lines.append(f"state transitions: {report.transitions}")
    lines += [f"  FAILED EXPECTATION: {failure}" for failure in report.failures]
    return "\n".join(lines)


def recovery_seconds(report: Report) -> float:
    """Time to recovery: the longest execution that did recovery work, in simulated seconds."""
    return max((e.sim_seconds for e in report.executions if WORK_STATE in e.path), default=0.0)


def progress_line(report: Report, number: int, total: int) -> str:
    """One line as a scenario finishes (and one more per failed expectation)."""
    reboots = sum(report.actions.get("reboots", {}).values())
    line = (
        f"[{number}/{total}] {'PASS' if report.passed else 'FAIL'}  {report.scenario}: recovered in "
        f"{format_duration(recovery_seconds(report))} (simulated), {reboots} reboot(s), "
        f"{report.transitions} transitions"
    )
    return "\n".join([line, *(f"    FAILED EXPECTATION: {failure}" for failure in report.failures)])


def summary_table(reports: list[Report]) -> str:
    rows = [
        [
            r.scenario,
            "PASS" if r.passed else "FAIL",
            format_duration(recovery_seconds(r)),
            sum(r.actions.get("reboots", {}).values()),
            r.transitions,
        ]
        for r in reports
    ]
    passed = sum(r.passed for r in reports)
    table = render_table(rows, ["SCENARIO", "RESULT", "TIME TO RECOVERY (SIM)", "REBOOTS", "TRANSITIONS"])
    return f"{table}\n{passed} passed, {len(reports) - passed} failed"


def bars(report: Report) -> list[timeline.Bar]:
    """The timeline of the executions that did recovery work, on the scenario's simulated clock."""
    working = [e for e in report.executions if WORK_STATE in e.path]
    return [
        bar
        for number, execution in enumerate(working, 1)
        for bar in timeline.from_visits(execution.visits, f"#{number} " if len(working) > 1 else "")
    ]
