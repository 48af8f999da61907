"""Corrections: two JSONPath results of moto's ``extract_json`` that differ from AWS.

moto 5.2.5 ``moto.stepfunctions.parser.asl.utils.json_path.extract_json``:

* ``json_path_index_then_field_is_wrapped``: ``$.a[0].b`` yields ``[value]`` instead of ``value`` (moto wraps
  every match whose parent was reached through an index, a fix for moto issue #7825 that over-reaches).
  AWS returns a list only for a path that can match several nodes (wildcard, slice, filter, union).
* ``json_path_empty_filter_raises``: a filter that matches nothing (``$.items[?(@.ok == true)]``) raises
  ``NoSuchJsonPathError`` (``States.Runtime``) instead of yielding ``[]`` as AWS does.

``extract_json`` is imported by name into many modules, so the corrected function replaces every such binding.
Remove when the tests in ``test_json_path_quirks.py`` report that moto behaves like AWS.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from jsonpath_ng.ext import parse
from moto.stepfunctions.parser.asl.utils import json_path as moto_json_path

from gpu_recovery.engine.moto_bindings import replaced_everywhere

# Any of these makes a path "indefinite": it can match several nodes, so AWS always returns a list.
_INDEFINITE: Final = re.compile(r"\[\s*(\*|\?|-?\d*\s*:|[^\]]*,)|\.\.|\.\*")


def _is_indefinite(path: str) -> bool:
    return bool(_INDEFINITE.search(path))


@functools.lru_cache(maxsize=1024)
def _parsed(path: str) -> Any:
    # Parsing builds a PLY parser each time (most of a lookup's cost); a parsed path is only read by find().
    return parse(path)


def extract_json(path: str, data: Any) -> Any:
    """AWS semantics: indefinite paths give a list (possibly empty); definite paths give the single value."""
    matches = _parsed(path).find(data)
    if _is_indefinite(path):
        return [match.value for match in matches]
    if not matches:
        raise moto_json_path.NoSuchJsonPathError(json_path=path, data=data)
    return matches[0].value


@contextmanager
def correct_json_path_quirks() -> Iterator[None]:
    """Replace ``extract_json`` in moto's JSONPath module and in every moto module that imported it."""
    with replaced_everywhere("extract_json", moto_json_path.extract_json, extract_json):
        yield
