"""Correction: moto parses a state machine definition again, with ANTLR, at every CreateStateMachine and every
StartExecution.

moto 5.2.5 calls ``AmazonStateLanguageParser.parse(definition)`` to validate a definition
(``StepFunctionsParserBackend._validate_definition``) and again for each execution
(``ExecutionWorker._get_evaluation_entrypoint``): a third of the CPU of a simulated scenario went there. The
parsed program is a tree of components that keep no per-execution state (an execution's state lives in its
``Environment``), so one parse per distinct definition serves every execution, in this process, of every engine.
A definition that does not parse is not remembered: it fails the same way each time.
Test: ``test_definition_parsed_per_execution.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

_moto_parse = AmazonStateLanguageParser.parse


@functools.lru_cache(maxsize=32)
def _parse_once(definition: str) -> tuple[Any, Any]:
    return _moto_parse(definition)


@contextmanager
def correct_definition_parsed_per_execution() -> Iterator[None]:
    with mock.patch.object(AmazonStateLanguageParser, "parse", staticmethod(_parse_once)):
        yield
