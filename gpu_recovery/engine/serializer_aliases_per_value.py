"""Correction: moto's response serializer works out again, for every value it writes, which attribute names to try.

moto 5.2.5 renders each response from the operation's botocore output shape
(``moto.core.serialize.ResponseSerializer``): for every member of every structure, ``XFormedAttributePicker``
instantiates its six alias providers and asks each which names the member may have on the Python object
(``Status``, ``status``, a name without the shape's or the class's prefix, ...). The answer depends only on the
picker, the object's class, the member's shape (and the structure it belongs to) and the member's name, yet it is
recomputed for each value: a DescribeTasks of one task asks it ~150 times, and it was the largest single cost of a
storm. Here each answer is computed once by moto's own code and remembered for that combination; the response is
the same, byte for byte. An object with its own (instance) ``Meta`` aliases is not remembered.
Test: ``test_serializer_aliases_per_value.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from moto.core.serialize import AttributePickerContext, XFormedAttributePicker

_moto_possible_keys = XFormedAttributePicker.get_possible_keys


@contextmanager
def correct_serializer_aliases_per_value() -> Iterator[None]:
    # Shapes are hashed by identity and kept alive by the cache, so a key never stands for another shape.
    answers: dict[tuple[Any, ...], tuple[str, ...]] = {}

    def get_possible_keys(picker: XFormedAttributePicker, context: AttributePickerContext) -> Iterator[str]:
        obj, shape = context.obj, context.shape
        if "Meta" in getattr(obj, "__dict__", {}):
            return _moto_possible_keys(picker, context)
        key = (type(picker), *picker.alias_providers, type(obj), shape, getattr(shape, "parent", None), context.key)
        names = answers.get(key)
        if names is None:
            names = answers[key] = tuple(_moto_possible_keys(picker, context))
        return iter(names)

    with mock.patch.object(XFormedAttributePicker, "get_possible_keys", get_possible_keys):
        yield
