"""The simulate report as an operator reads it: each execution's path with simulated timings (like the
console's graph), what was done to the fleet, what people were told, and the final table rows."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpu_recovery.simulate import Report


def render(report: Report) -> str:
    lines = [f"=== {report.scenario}: {'PASS' if report.passed else 'FAIL'} ==="]
    for execution in report.executions:
        lines.append(f"execution {execution.name}: {execution.status} in {execution.sim_seconds:.0f} sim s")
        for visit in execution.visits:
            where = f"  [{visit['item']}]" if visit.get("item") else ""
            lines.append(f"  {visit['entered_at_sim']:>7.0f}s  {visit['name']}{where}")
        if execution.error:
            lines.append(f"  error: {execution.error}: {execution.cause}")
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
