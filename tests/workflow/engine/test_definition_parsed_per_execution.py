"""Correction ``definition_parsed_per_execution``: each distinct definition is parsed once per process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from engine_harness import StartEngine
from moto.stepfunctions.parser import utils as sfn_utils
from moto.stepfunctions.parser.asl.component.common.retry.max_attempts_decl import MaxAttemptsDecl
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

from gpu_recovery.engine import definition_parsed_per_execution

pytestmark = pytest.mark.slow


@contextmanager
def counting_parses() -> Iterator[list[str]]:
    """Count moto's own parses (under the correction's cache, when it is applied)."""
    parsed: list[str] = []
    moto_parse = definition_parsed_per_execution._moto_parse

    def counted(definition: str) -> Any:
        parsed.append(definition)
        return moto_parse(definition)

    definition_parsed_per_execution._parse_once.cache_clear()
    with (
        mock.patch.object(definition_parsed_per_execution, "_moto_parse", counted),
        mock.patch.object(AmazonStateLanguageParser, "parse", staticmethod(counted)),
    ):
        yield parsed


def run_twice(engine, tmp_path: Path, comment: str) -> None:
    asl = tmp_path / f"{comment}.asl.json"
    asl.write_text(json.dumps({"Comment": comment, "StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))
    machine = engine.deploy_state_machine(comment, asl, {})
    for name in ("run-1", "run-2"):
        assert engine.wait(engine.start_execution(machine, name, {}))["status"] == "SUCCEEDED"


def test_moto_still_parses_the_definition_for_every_execution(start_engine: StartEngine, tmp_path: Path) -> None:
    """Shows the moto behaviour. If this fails, moto no longer re-parses per execution: revisit the correction."""
    with counting_parses() as parsed:
        engine = start_engine(without=("definition_parsed_per_execution",))
        run_twice(engine, tmp_path, "moto")
    assert len(parsed) == 3  # CreateStateMachine validates, then each StartExecution parses again


def test_each_definition_is_parsed_once(start_engine: StartEngine, tmp_path: Path) -> None:
    with counting_parses() as parsed:
        engine = start_engine()
        run_twice(engine, tmp_path, "corrected")
    assert len(parsed) == 1


def test_heap_keys_draw_nothing_from_the_seeded_source() -> None:
    """A shared component's heap key is drawn once per process: drawing it from the simulation's seeded source
    would shift every later draw (a retry's jitter) by what ran before."""
    with (
        definition_parsed_per_execution.correct_definition_parsed_per_execution(),
        mock.patch.object(sfn_utils, "uuid4", side_effect=AssertionError("drew from the seeded source")),
    ):
        first, second = MaxAttemptsDecl(), MaxAttemptsDecl()
        assert first.heap_key != second.heap_key
        assert first.heap_key == first.heap_key
