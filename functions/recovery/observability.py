"""Powertools singletons. Service name, log level and metrics namespace come from the environment
(POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL, POWERTOOLS_METRICS_NAMESPACE) that the stack sets."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def correlate(event: Mapping[str, Any]) -> None:
    """Every step's payload carries the execution; its name is the correlation id across all steps."""
    execution = event.get("execution") or {}
    logger.set_correlation_id(execution.get("name"))


def step_handler(handler: Handler) -> Handler:
    """What every step's handler needs: the Lambda context in the logs, the execution name as correlation id,
    X-Ray tracing and metrics flushed as EMF at the end of the invocation."""

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    @metrics.log_metrics
    @functools.wraps(handler)
    def wrapped(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        correlate(event)
        return handler(event, context)

    return wrapped
