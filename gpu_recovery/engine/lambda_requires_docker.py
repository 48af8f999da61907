"""Correction: moto runs Lambda functions only inside docker.

moto 5.2.5 ``LambdaFunction._invoke_lambda`` starts a docker container; with ``lambda.use_docker: False`` the
function merely echoes its payload. Neither runs our step Lambdas. This correction replaces ``_invoke_lambda``
(keeping ``use_docker`` at its default, so moto's real ``invoke`` path, headers and ``FunctionError`` handling stay
in place) with an in-process call of the function's Python handler.

A raised exception comes back the way the AWS Python runtime reports it: a function error whose payload is
``{"errorMessage", "errorType", "requestId", "stackTrace"}``. moto's Step Functions Lambda integration
(``StateTaskServiceLambda._from_error``) takes ``errorType`` as the state's error name, exactly as AWS does for
``arn:aws:states:::lambda:invoke``, so ``Catch``/``Retry`` on e.g. ``"InvalidInput"`` work.

Remove when moto can run a Python handler without docker (test: ``test_lambda_requires_docker.py``).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from moto.awslambda.models import LambdaFunction


@dataclass
class LambdaContext:
    """The attributes of the AWS Python runtime's context that handlers and Powertools read."""

    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    timeout_seconds: float
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        # Real time on purpose: a handler's own run time is not simulated.
        remaining = self.timeout_seconds - (time.monotonic() - self._started)
        return max(int(remaining * 1000), 0)


def _context_for(function: LambdaFunction) -> LambdaContext:
    request_id = str(uuid.uuid4())
    today = time.strftime("%Y/%m/%d", time.gmtime())
    return LambdaContext(
        function_name=function.function_name,
        function_version=str(function.version),
        invoked_function_arn=function.function_arn,
        memory_limit_in_mb=int(function.memory_size),
        aws_request_id=request_id,
        log_group_name=function.logs_group_name,
        log_stream_name=f"{today}/[{function.version}]{request_id.replace('-', '')}",
        timeout_seconds=float(function.timeout),
    )


def _resolve_handler(handler: str) -> Any:
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise ValueError(f"handler must look like 'module.function', got {handler!r}")
    return getattr(importlib.import_module(module_name), function_name)


def _error_payload(exc: BaseException, request_id: str) -> dict[str, Any]:
    tb = exc.__traceback__
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        # The runtime reports the handler's frames only, not its own (here: the frame that called the handler).
        "stackTrace": traceback.format_list(traceback.extract_tb(tb.tb_next if tb else None)),
    }


def _invoke_in_process(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    """Stands in for ``LambdaFunction._invoke_lambda``: returns ``(payload, errored, logs)`` like moto's."""
    # moto hands over the decoded request body, or the string "{}" when the body was empty.
    if event is None or event == "{}":
        event = {}
    context = _context_for(self)
    # Every step Lambda of this project shares one environment (docs/local-engine.md), so writing it into the
    # process environment cannot disturb a concurrent invocation; LocalEngine restores os.environ on exit.
    os.environ.update({key: str(value) for key, value in self.environment_vars.items()})
    try:
        result = _resolve_handler(str(self.handler))(event, context)
    except Exception as exc:  # the runtime reports every handler exception as a function error
        return json.dumps(_error_payload(exc, context.aws_request_id)), True, ""
    return json.dumps(result), False, ""


@contextmanager
def correct_lambda_requires_docker(handler_paths: Sequence[Path]) -> Iterator[None]:
    """Run Lambda handlers in-process, importing them from ``handler_paths`` (searched first, in order)."""
    search_path = [str(path) for path in handler_paths if str(path) not in sys.path]
    with (
        mock.patch.object(sys, "path", [*search_path, *sys.path]),
        mock.patch.object(LambdaFunction, "_invoke_lambda", _invoke_in_process),
    ):
        yield
