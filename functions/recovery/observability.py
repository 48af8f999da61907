"""Powertools singletons. Service name, log level and metrics namespace come from the environment
(POWERTOOLS_SERVICE_NAME, POWERTOOLS_LOG_LEVEL, POWERTOOLS_METRICS_NAMESPACE) that the stack sets."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from botocore.retries.standard import RetryContext, ThrottledRetryableChecker

from recovery.models import Throttled

Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]

logger = Logger()
metrics = Metrics()


@functools.cache
def tracer() -> Tracer:
    """Made by the first traced handler, so that an untraced one never imports the X-Ray SDK (a quarter of a bare
    `import boto3` at every cold start: docs/benchmarks.md). Every call a step makes downstream is an AWS SDK
    call: botocore is the one module patched (without patch_modules the SDK imports every library it can patch
    that is installed)."""
    return Tracer(patch_modules=("botocore",))


def correlate(event: Mapping[str, Any]) -> None:
    """Every step's payload carries the execution; its name is the correlation id across all steps."""
    execution = event.get("execution") or {}
    logger.set_correlation_id(execution.get("name"))


def step_handler(handler: Handler) -> Handler:
    """What every step's handler needs: the Lambda context in the logs, the execution name as correlation id,
    metrics flushed as EMF at the end of the invocation, and an AWS call still throttled after the SDK's retries
    surfaced as Throttled, an error name the state machine's Retry blocks can name. Lambda's active tracing still
    records the invocation (its segment and Initialization/Invocation subsegments) without the X-Ray SDK."""

    @logger.inject_lambda_context
    @metrics.log_metrics
    @functools.wraps(handler)
    def wrapped(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        correlate(event)
        try:
            return handler(event, context)
        except ClientError as error:
            # botocore's own list of throttling error codes (the ones its retry modes back off on).
            if ThrottledRetryableChecker().is_retryable(RetryContext(attempt_number=1, parsed_response=error.response)):
                raise Throttled(str(error)) from error
            raise

    return wrapped


def count_by(name: str, dimension: str, value: str) -> None:
    """Count one event under its own dimension (e.g. verdicts by Action), in an EMF document of its own: a
    dimension added to `metrics` would apply to every metric of the invocation and hide them from the
    dashboard's and alarms' {service} series."""
    if is_metrics_disabled():  # single_metric prints even then (the simulator turns metrics off)
        return
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=metrics.namespace) as metric:
        if metrics.service:
            metric.add_dimension(name="service", value=str(metrics.service))
        metric.add_dimension(name=dimension, value=value)


def traced_step_handler(handler: Handler) -> Handler:
    """A step handler whose AWS calls are worth a trace of their own (X-Ray subsegments per ECS, CloudWatch Logs
    and DynamoDB call): the steps whose calls are many or slow (the job's tasks, RunTask, the DCGM logs).
    The Tracer, and with it the X-Ray SDK and its botocore patch, is made at the first invocation, before the
    handler makes any AWS call: the patch wraps botocore's client class, so clients made earlier are traced too
    (docs/benchmarks.md, cold import)."""

    @functools.cache
    def captured() -> Handler:
        return tracer().capture_lambda_handler(handler)

    @functools.wraps(handler)
    def traced(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        return captured()(event, context)

    return step_handler(traced)
