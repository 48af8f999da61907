"""Replacing a moto function that other moto modules imported by name (``from x import f``): patching its own
module is not enough, every module holding the name must be patched."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock


@contextmanager
def replaced_everywhere(name: str, original: Callable[..., Any], replacement: Callable[..., Any]) -> Iterator[None]:
    """Bind ``name`` to ``replacement`` in every Step Functions module of moto where it is ``original``."""
    # The preprocessor imports every ASL component, so every module that binds the name is loaded now.
    importlib.import_module("moto.stepfunctions.parser.asl.parse.preprocessor")
    holders = [
        module
        for module_name, module in list(sys.modules.items())
        if module_name.startswith("moto.stepfunctions") and getattr(module, name, None) is original
    ]
    with ExitStack() as stack:
        for module in holders:
            stack.enter_context(mock.patch.object(module, name, replacement))
        yield
