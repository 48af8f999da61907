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

import importlib
import re
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, Final
from unittest import mock

from jsonpath_ng.ext import parse
from moto.stepfunctions.parser.asl.utils import json_path as moto_json_path

# Any of these makes a path "indefinite": it can match several nodes, so AWS always returns a list.
_INDEFINITE: Final = re.compile(r"\[\s*(\*|\?|-?\d*\s*:|[^\]]*,)|\.\.|\.\*")


def _is_indefinite(path: str) -> bool:
    return bool(_INDEFINITE.search(path))


def extract_json(path: str, data: Any) -> Any:
    """AWS semantics: indefinite paths give a list (possibly empty); definite paths give the single value."""
    matches = parse(path).find(data)
    if _is_indefinite(path):
        return [match.value for match in matches]
    if not matches:
        raise moto_json_path.NoSuchJsonPathError(json_path=path, data=data)
    return matches[0].value


@contextmanager
def correct_json_path_quirks() -> Iterator[None]:
    """Replace ``extract_json`` in moto's JSONPath module and in every moto module that imported it."""
    # The preprocessor imports every ASL component, so every module that binds extract_json is loaded now.
    importlib.import_module("moto.stepfunctions.parser.asl.parse.preprocessor")
    original = moto_json_path.extract_json
    holders = [
        module
        for name, module in list(sys.modules.items())
        if name.startswith("moto.stepfunctions") and getattr(module, "extract_json", None) is original
    ]
    with ExitStack() as stack:
        for module in holders:
            stack.enter_context(mock.patch.object(module, "extract_json", extract_json))
        yield
