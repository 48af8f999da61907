"""Shared helpers of the CLI tests (a module of its own: conftest.py is not importable by name)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from infra.config import Config

CliResult = tuple[int, str, str]
CliRun = Callable[..., CliResult]


@dataclass
class Deployment:
    state_machine_arn: str
    cluster_arn: str
    instance_ids: list[str]
    container_instances: list[str]
    tasks: list[str]
    config: Config
