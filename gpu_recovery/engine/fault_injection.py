"""Injecting AWS errors into the stack's own calls (scenario ``api_faults``, gpu_recovery/api_faults.py).

moto answers every call it implements. To exercise the definition's Retry and Catch paths and the Lambdas' SDK
retries, a matching call is answered, before moto sees it, by the error response the service sends: moto's
``BotocoreStubber`` (the ``before-send`` hook every client calls) returns an HTTP error in the service's protocol,
so botocore parses it and retries it as it would a real one (the step Lambdas' adaptive retries; Step Functions'
clients do not retry, its Retry blocks do). Only calls made as a principal of the stack (a step Lambda, the state
machine) are candidates; the test harness and the fleet are never faulted. A ``step`` rule makes the step Lambda
invoked by that Task state crash, as a runtime exit does: the state fails with ``Runtime.ExitError``.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final
from unittest import mock

import botocore.session
from botocore.awsrequest import AWSResponse
from moto.awslambda.models import LambdaFunction
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda

from gpu_recovery.api_faults import ApiFault
from gpu_recovery.engine.iam_not_enforced import DENIED_CODE, current_principal

# (code, HTTP status) each service answers, from its API reference's common errors.
_THROTTLING: Final = {
    "ec2": ("RequestLimitExceeded", 503),
    "sns": ("Throttling", 400),
    "lambda": ("TooManyRequestsException", 429),
}
_SERVER_ERROR: Final = {
    "ecs": ("ServerException", 500),
    "ec2": ("InternalError", 500),
    "dynamodb": ("InternalServerError", 500),
    "sns": ("InternalError", 500),
    "ssm": ("InternalServerError", 500),
    "lambda": ("ServiceException", 500),
    "logs": ("ServiceUnavailableException", 500),
}
CRASH_ERROR: Final = "Runtime.ExitError"

_state: ContextVar[str | None] = ContextVar("gpu_recovery_fault_state", default=None)


@cache
def event_name_of(service: str) -> str:
    """How botocore's events name a service: its service ID, hyphenized (``logs`` -> ``cloudwatch-logs``)."""
    return str(botocore.session.get_session().get_service_model(service).service_id.hyphenize())


def error_code(service: str, error: str) -> tuple[str, int]:
    if error == "throttling":
        return _THROTTLING.get(service, ("ThrottlingException", 400))
    if error == "server_error":
        return _SERVER_ERROR[service]
    return DENIED_CODE.get(service, ("AccessDeniedException", 400))


def error_body(service: str, code: str) -> tuple[bytes, dict[str, str]]:
    """An error response body in the service's protocol (what botocore's parsers read)."""
    protocol = botocore.session.get_session().get_service_model(service).protocol
    message = "injected by the scenario's api_faults"
    request_id = str(uuid.uuid4())
    if protocol == "ec2":
        xml = f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
        return f"{xml}<RequestID>{request_id}</RequestID></Response>".encode(), {}
    if protocol == "query":
        xml = f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        return f"{xml}<RequestId>{request_id}</RequestId></ErrorResponse>".encode(), {}
    body = json.dumps({"__type": code, "message": message}).encode()
    return body, {"x-amzn-ErrorType": code, "x-amzn-RequestId": request_id}


@dataclass
class FaultInjector:
    rules: list[ApiFault] = field(default_factory=list)
    # Node name -> strings a request names it by (instance ID, container instance ARN).
    node_ids: dict[str, Sequence[str]] = field(default_factory=dict)
    # Every fault injected: (rule index, what was hit) -- for reports and tests.
    injected: list[tuple[int, str]] = field(default_factory=list)
    _calls: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self, rules: Sequence[ApiFault], node_ids: Mapping[str, Sequence[str]]) -> None:
        self.rules, self.node_ids = list(rules), dict(node_ids)

    def _hit(self, matches: Any, what: str) -> ApiFault | None:
        with self._lock:
            for index, rule in enumerate(self.rules):
                if matches(rule):
                    self._calls[index] = call = self._calls.get(index, 0) + 1
                    if rule.fails(call):
                        self.injected.append((index, what))
                        return rule
        return None

    def api_fault(self, event_service: str, operation: str, body: str) -> ApiFault | None:
        """The rule that fails this call, if any; ``event_service`` as botocore's events name it (``ecs``,
        ``cloudwatch-logs``)."""

        def matches(rule: ApiFault) -> bool:
            service, _, rule_operation = (rule.api or "").partition(":")
            named = rule.node is None or any(i in body for i in self.node_ids.get(rule.node, ()))
            return rule_operation == operation and event_name_of(service) == event_service and named

        return self._hit(matches, f"{event_service}:{operation}")

    def step_crash(self, state: str) -> bool:
        return self._hit(lambda rule: rule.step == state, state) is not None


@contextmanager
def injecting(injector: FaultInjector) -> Iterator[None]:
    stubber_call = BotocoreStubber.__call__
    invoke_lambda = LambdaFunction._invoke_lambda
    lambda_execution = StateTaskLambda._eval_execution

    def answer(stubber: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> AWSResponse | None:
        if stubber.enabled and current_principal() is not None:
            _, event_service, operation = event_name.split(".", 2)
            body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
            rule = injector.api_fault(event_service, operation, body)
            if rule is not None and rule.api is not None:
                service = rule.api.partition(":")[0]
                code, status = error_code(service, rule.error)
                content, headers = error_body(service, code)
                return AWSResponse(request.url, status, headers, MockRawResponse(content))
        return stubber_call(stubber, event_name, request, **kwargs)

    def crashing(function: LambdaFunction, event: str | None = None) -> tuple[str, bool, str]:
        state = _state.get()
        if state is not None and injector.step_crash(state):
            error = {"errorType": CRASH_ERROR, "errorMessage": "Runtime exited with error: signal: killed (injected)"}
            return json.dumps(error), True, ""
        return invoke_lambda(function, event)

    def in_state(state: StateTaskLambda, env: Any) -> None:
        token = _state.set(state.name)
        try:
            lambda_execution(state, env)
        finally:
            _state.reset(token)

    with (
        mock.patch.object(BotocoreStubber, "__call__", answer),
        mock.patch.object(LambdaFunction, "_invoke_lambda", crashing),
        mock.patch.object(StateTaskLambda, "_eval_execution", in_state),
    ):
        yield
