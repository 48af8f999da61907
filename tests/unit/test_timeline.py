"""The per-node timeline: the same bars as text in the terminal and as an SVG file."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from gpu_recovery import timeline
from gpu_recovery.history import History, Visit
from gpu_recovery.timeline import WORKFLOW_LANE, Bar

BARS = [
    Bar(WORKFLOW_LANE, "ClassifyFailure", 0, 1),
    Bar(WORKFLOW_LANE, "CheckNodes", 2, 600),
    Bar("i-0bad", "RunDcgmDiag", 2, 122),
    Bar("i-0bad", "WaitForReboot", 130, 430),
    Bar("i-0good", "RunDcgmDiag", 2, 120),
]


def test_text_gantt_has_one_row_per_state_that_took_time() -> None:
    rows = timeline.text(BARS, width=40).splitlines()
    assert rows[0].split() == ["0s", "2m30s", "5m00s", "7m30s", "10m00s"]
    names = [" ".join(r.split()[:2]) for r in rows[1:]]
    # the workflow first, then each node; ClassifyFailure (1 s of 600) is an instant on this scale
    assert names == ["workflow CheckNodes", "i-0bad RunDcgmDiag", "i-0bad WaitForReboot", "i-0good RunDcgmDiag"]
    reboot = rows[3]
    assert reboot.endswith("5m00s")
    bar = reboot[reboot.index("█") : reboot.rindex("█") + 1]
    assert set(bar) == {"█"}
    assert len(bar) == 20  # 300 of 600 s on 40 cells


def test_svg_is_well_formed_with_a_tooltip_per_bar() -> None:
    document = ET.fromstring(timeline.svg([*BARS, Bar("<node&>", "X", 0, 300)], "exec <1>"))
    titles = [t.text for t in document.iter("{http://www.w3.org/2000/svg}title")]
    assert "i-0bad WaitForReboot: 5m00s" in titles
    assert "<node&> X: 5m00s" in titles


def test_from_history_puts_map_iterations_on_their_node_lane() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    scope = (("CheckNodes", 0),)
    walked = History(
        visits=[
            Visit("ClassifyFailure", "Task", (), start, start + timedelta(seconds=1)),
            Visit(
                "RunDcgmDiag",
                "Task",
                scope,
                start + timedelta(seconds=5),
                start + timedelta(seconds=125),
                input={"node": {"ec2InstanceId": "i-0bad"}},
            ),
        ],
        started=start,
    )
    assert timeline.from_history(walked) == [
        Bar(WORKFLOW_LANE, "ClassifyFailure", 0, 1),
        Bar("i-0bad", "RunDcgmDiag", 5, 125),
    ]


def test_from_visits_uses_the_simulated_clock_and_the_item() -> None:
    visits = [
        {"name": "LockJob", "entered_at_sim": 3.0, "exited_at_sim": 4.0, "item": None},
        {"name": "NodeChecked", "entered_at_sim": 9.0, "exited_at_sim": None, "item": "node-1"},
    ]
    assert timeline.from_visits(visits, "#2 ") == [
        Bar(f"#2 {WORKFLOW_LANE}", "LockJob", 3.0, 4.0),
        Bar("#2 node-1", "NodeChecked", 9.0, 9.0),
    ]
