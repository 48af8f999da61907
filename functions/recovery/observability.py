"""Powertools singletons. Service name, log level and metrics namespace come from the environment
(POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL, POWERTOOLS_METRICS_NAMESPACE) that the stack sets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def correlate(event: Mapping[str, Any]) -> None:
    """Every step's payload carries the execution; its name is the correlation id across all steps."""
    execution = event.get("execution") or {}
    logger.set_correlation_id(execution.get("name"))
