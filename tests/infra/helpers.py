"""Template helpers shared by the infra tests."""

from __future__ import annotations

from typing import Any


def of_type(resources: dict[str, dict[str, Any]], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in resources.items() if v["Type"] == type_}
