"""Correction: moto parses a state machine definition again, with ANTLR, at every CreateStateMachine and every
StartExecution.

moto 5.2.5 calls ``AmazonStateLanguageParser.parse(definition)`` to validate a definition
(``StepFunctionsParserBackend._validate_definition``) and again for each execution
(``ExecutionWorker._get_evaluation_entrypoint``): a third of the CPU of a simulated scenario went there. The
parsed program is a tree of components that keep no per-execution state (an execution's state lives in its
``Environment``), so one parse per distinct definition serves every execution, in this process, of every engine.
A definition that does not parse is not remembered: it fails the same way each time.

A shared tree has one catch: a component draws its ``heap_key`` (the name of its slot in an execution's heap,
e.g. a Retry's attempt counter) from moto's ``long_uid`` the first time it is used, and keeps it. With one parse
per process, only the first execution to use a component draws that key, so the number of draws from the
simulation's seeded random source (which ``long_uid`` reads) would depend on what ran before in the process, and
a retried interval's jitter with it. Heap keys only need to be distinct, so here they come from a counter.
Test: ``test_definition_parsed_per_execution.py``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from moto.stepfunctions.parser.asl.component import eval_component
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

_moto_parse = AmazonStateLanguageParser.parse
_heap_keys = itertools.count()


def _next_heap_key() -> str:
    return f"heap-{next(_heap_keys)}"


@functools.lru_cache(maxsize=32)
def _parse_once(definition: str) -> tuple[Any, Any]:
    return _moto_parse(definition)


@contextmanager
def correct_definition_parsed_per_execution() -> Iterator[None]:
    with (
        mock.patch.object(AmazonStateLanguageParser, "parse", staticmethod(_parse_once)),
        mock.patch.object(eval_component, "long_uid", _next_heap_key),
    ):
        yield
