"""Realistic dcgmi outputs (DCGM 3.3, 4.2, 4.4, 4.6 and an unknown 5.x; levels 1-4; single- and multi-GPU failures;
warnings, skips, runtime errors, plain text, truncated and empty output; kernel logs) and the verdict NVIDIA's
guidance gives each. tests/unit/fixtures/dcgm/cases.json names, per file, the exit code, the expected verdict, the
action per GPU (or other DCGM entity) and the NVIDIA source it follows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from recovery.diagnosis import _label, diagnose

CASES_DIR = Path(__file__).parent / "fixtures" / "dcgm"
CASES: list[dict[str, Any]] = json.loads((CASES_DIR / "cases.json").read_text())


def test_the_cases_cover_what_the_issue_asks_for() -> None:
    files = [c["file"] for c in CASES]
    assert len(files) >= 25
    for prefix in ("v33_", "v42_", "v44_", "v46_", "v5_"):
        assert any(f.startswith(prefix) for f in files), prefix
    for level in ("_r1_", "_r2_", "_r3_", "_r4_"):
        assert any(level in f for f in files), level
    assert all(c["source"] for c in CASES)
    assert len(files) == len(set(files))


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_case_gets_nvidias_verdict(case: dict[str, Any]) -> None:
    text = (CASES_DIR / "cases" / case["file"]).read_text()
    verdict = diagnose(case["exitCode"], text, dcgm_version=case.get("dcgmVersion"))
    assert (verdict.status.value, verdict.action.value) == (case["status"], case["action"]), verdict.reasons
    found = {_label(f): f.action for f in verdict.gpus}
    labelled = {("node" if label == "an unidentified GPU" else label): action for label, action in found.items()}
    assert labelled == case["findings"], verdict.reasons
