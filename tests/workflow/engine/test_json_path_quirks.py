"""Corrections ``json_path_quirks``: ``$.a[0].b`` gives the value; an empty filter gives ``[]``."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest
from engine_harness import StartEngine, run
from moto.stepfunctions.parser.asl.utils.json_path import NoSuchJsonPathError
from moto.stepfunctions.parser.asl.utils.json_path import extract_json as moto_extract_json

from gpu_recovery.engine import json_path_quirks
from gpu_recovery.engine.json_path_quirks import extract_json

DATA = {"a": [{"b": "first"}, {"b": "second"}], "items": [{"ok": False}]}
PICK = {
    "StartAt": "Pick",
    "States": {
        "Pick": {
            "Type": "Pass",
            "Parameters": {"b.$": "$.a[0].b", "healthy.$": "$.items[?(@.ok == true)]"},
            "End": True,
        }
    },
}


def test_moto_still_wraps_index_then_field() -> None:
    """Shows the moto behaviour. If this fails, moto fixed ``$.a[0].b``: drop that half of the correction."""
    assert moto_extract_json("$.a[0].b", DATA) == ["first"]


def test_moto_still_raises_on_an_empty_filter() -> None:
    """Shows the moto behaviour. If this fails, moto returns [] for empty filters: drop that half."""
    with pytest.raises(NoSuchJsonPathError):
        moto_extract_json("$.items[?(@.ok == true)]", DATA)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$.a[0].b", "first"),
        ("$.a[1]", {"b": "second"}),
        ("$.a[*].b", ["first", "second"]),
        ("$.a[0:1].b", ["first"]),
        ("$.items[?(@.ok == true)]", []),
        ("$.items[?(@.ok == false)]", [{"ok": False}]),
        ("$", DATA),
    ],
)
def test_corrected_extract_json(path: str, expected: object) -> None:
    assert extract_json(path, DATA) == expected


def test_missing_definite_path_still_raises() -> None:
    with pytest.raises(NoSuchJsonPathError):
        extract_json("$.a[0].missing", DATA)


@pytest.mark.slow
def test_state_machine_sees_aws_json_path_results(start_engine: StartEngine, tmp_path: Path) -> None:
    result = run(start_engine(), tmp_path, PICK, DATA)
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"b": "first", "healthy": []}


def test_each_path_is_parsed_once() -> None:
    json_path_quirks._parsed.cache_clear()
    with mock.patch.object(json_path_quirks, "parse", wraps=json_path_quirks.parse) as parse:
        for _ in range(3):
            assert extract_json("$.a[1].b", DATA) == "second"
    assert parse.call_count == 1
