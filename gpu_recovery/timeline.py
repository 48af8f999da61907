"""Where a recovery's minutes went: each node's states on one time axis, as a text Gantt chart for the terminal
and as an SVG file (`show --timeline FILE`, `simulate --timeline FILE`). Both `show` (an execution's history)
and `simulate` (the local engine's visits) reduce an execution to the same bars."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from gpu_recovery.cli_output import format_duration
from gpu_recovery.history import History

WORKFLOW_LANE = "workflow"
# A state is drawn when it took at least this share of the recovery: the rest are instants on this scale.
MIN_SHARE = 0.02
TEXT_WIDTH = 60
SVG_SCALE_WIDTH, SVG_ROW, SVG_LABEL = 720, 18, 320
_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7")


@dataclass(frozen=True)
class Bar:
    lane: str  # the node (or task) a Map iteration worked on, or WORKFLOW_LANE
    state: str
    start: float  # seconds from the execution's start
    end: float


def significant(bars: list[Bar]) -> tuple[list[Bar], float]:
    """The bars worth a row, in lane then time order, and the recovery's total seconds."""
    total = max((b.end for b in bars), default=0.0)
    shown = [b for b in bars if total and (b.end - b.start) >= MIN_SHARE * total]
    return sorted(shown, key=_order), total


def _order(bar: Bar) -> tuple[str, bool, str, float]:
    """Per execution (a `#N ` prefix when there are several), the workflow's own states first, then each node."""
    execution = bar.lane.split(" ", 1)[0] if bar.lane.startswith("#") else ""
    return execution, not bar.lane.endswith(WORKFLOW_LANE), bar.lane, bar.start


def text(bars: list[Bar], width: int = TEXT_WIDTH) -> str:
    """One row per state that took a visible share of the time: lane, state, a bar on the time axis, duration."""
    shown, total = significant(bars)
    if not shown:
        return "(nothing took measurable time)"
    label = max(len(f"{b.lane}  {b.state}") for b in shown)
    ticks = [format_duration(total * i / 4) for i in range(5)]
    axis = "".join(t.ljust(width // 4) for t in ticks[:-1]) + ticks[-1]
    lines = [f"{'':<{label}}  {axis}"]
    for bar in shown:
        first = min(width - 1, int(bar.start / total * width))
        cells = max(1, round((bar.end - bar.start) / total * width))
        row = " " * first + "█" * min(cells, width - first)
        name = f"{bar.lane}  {bar.state}"
        lines.append(f"{name:<{label}}  {row:<{width}}  {format_duration(bar.end - bar.start)}")
    return "\n".join(lines)


def svg(bars: list[Bar], title: str) -> str:
    """The same rows as `text`, as a standalone SVG: one colour per lane, a tooltip per bar."""
    shown, total = significant(bars)
    lanes = list(dict.fromkeys(b.lane for b in shown))
    height = SVG_ROW * (len(shown) + 3)
    width = SVG_LABEL + SVG_SCALE_WIDTH + 80
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="12">',
        f'<text x="4" y="{SVG_ROW - 4}" font-weight="bold">{escape(title)}</text>',
    ]
    for i in range(5):
        x = SVG_LABEL + SVG_SCALE_WIDTH * i / 4
        parts.append(f'<line x1="{x:.1f}" y1="{SVG_ROW}" x2="{x:.1f}" y2="{height}" stroke="#ddd"/>')
        parts.append(f'<text x="{x:.1f}" y="{2 * SVG_ROW - 4}">{format_duration(total * i / 4)}</text>')
    for row, bar in enumerate(shown, start=2):
        y = row * SVG_ROW
        x = SVG_LABEL + bar.start / total * SVG_SCALE_WIDTH
        w = max(1.0, (bar.end - bar.start) / total * SVG_SCALE_WIDTH)
        colour = _PALETTE[lanes.index(bar.lane) % len(_PALETTE)]
        took = format_duration(bar.end - bar.start)
        parts.append(f'<text x="4" y="{y + SVG_ROW - 5}">{escape(bar.lane)}  {escape(bar.state)}</text>')
        parts.append(
            f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{SVG_ROW - 4}" fill="{colour}">'
            f"<title>{escape(bar.lane)} {escape(bar.state)}: {took}</title></rect>"
        )
        parts.append(f'<text x="{x + w + 4:.1f}" y="{y + SVG_ROW - 5}">{took}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def write(path: str, bars: list[Bar], title: str) -> None:
    Path(path).write_text(svg(bars, title), encoding="utf-8")


def from_history(walked: History) -> list[Bar]:
    """An execution's history (what `show` reads): seconds from its start, one lane per Map iteration."""
    labels = walked.labels()
    started = walked.started or (walked.visits[0].entered if walked.visits else None)
    if started is None:
        return []
    return [
        Bar(
            labels.get(v.scope, WORKFLOW_LANE) if v.scope else WORKFLOW_LANE,
            v.name,
            (v.entered - started).total_seconds(),
            ((v.exited or v.entered) - started).total_seconds(),
        )
        for v in walked.visits
    ]


def from_visits(visits: list[dict[str, Any]], prefix: str = "") -> list[Bar]:
    """The local engine's visits (what `simulate` reports): simulated seconds since the scenario began."""
    return [
        Bar(
            f"{prefix}{v.get('item') or WORKFLOW_LANE}",
            v["name"],
            v["entered_at_sim"],
            v["exited_at_sim"] if v["exited_at_sim"] is not None else v["entered_at_sim"],
        )
        for v in visits
    ]
