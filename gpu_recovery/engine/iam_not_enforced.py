"""Correction: moto authorizes nothing; AWS authorizes every request against the caller's policies.

moto 5.2.5 only checks IAM when ``INITIAL_NO_AUTH_ACTION_COUNT`` is set, and then only for its own server's HTTP
requests: the in-process calls of the local engine all pass, whatever the roles allow. In AWS every request is
authorized for its principal before the service runs it. This correction puts that check in front of moto:

* a step Lambda's boto3 calls run as the function's role, and the Lambda runtime writes the function's log group
  with that role (CreateLogStream, PutLogEvents) on every invocation;
* a state machine's service integrations and Lambda invocations run as the state machine's role; ``ecs:runTask.sync``
  also needs its managed EventBridge rule (Step Functions developer guide, "IAM policies for calling Amazon
  ECS/AWS Fargate": events:PutTargets, PutRule and DescribeRule on StepFunctionsGetEventsForECSTaskRule);
* an EventBridge rule delivering an event to a target (``Authorizer.delivering``) calls it with the target's role
  when the target names one, else is allowed by the target's resource-based policy (a Lambda's permissions).

Each request becomes the checks of ``iam_requests`` and is evaluated by ``iam_policy`` against the principal's
statements (taken from the synthesized template by ``gpu_recovery.stack_policies``); decisions are cached. A denied
request fails the way AWS fails it: a ClientError with the service's access-denied code (``AccessDeniedException``;
``AuthorizationError`` for SNS, ``UnauthorizedOperation`` for EC2), which the state machine sees under the
integration's error name (``service_error_names``). A denied log write does not fail the function (Lambda drops
the logs); it is recorded in ``Authorizer.denied``.

Principals without assigned policies (the engine's own test machines and functions, the test harness) are not
checked. Remove when moto authorizes in-process calls against attached policies.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final
from unittest import mock

import boto3
from botocore.client import BaseClient
from moto.awslambda.models import LambdaFunction
from moto.ec2.models import ec2_backends
from moto.ecs.models import ecs_backends
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda

from gpu_recovery.engine.iam_policy import Check, for_service, is_allowed
from gpu_recovery.engine.iam_requests import (
    Arns,
    checks_for,
    ecs_sync_rule_checks,
    log_stream_arn,
    with_resource_tags,
)

# The access-denied error each service returns (its API reference's common errors); others use this default.
DENIED_CODE: Final = {"sns": ("AuthorizationError", 403), "ec2": ("UnauthorizedOperation", 403)}
_DEFAULT_DENIED: Final = ("AccessDeniedException", 400)
# The runtime names each stream "YYYY/MM/DD/[$LATEST]<id>"; policies grant the group's streams, not one of them.
LAMBDA_LOG_STREAM: Final = "2026/01/01/[$LATEST]local"


@dataclass(frozen=True)
class Principal:
    """A role: its ARN and the statements of every identity policy attached to it."""

    role_arn: str
    statements: Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class RuleTarget:
    """How an EventBridge rule reaches one target: with ``role`` (the target's RoleArn) or, without one, through
    ``resource_policy``, the statements of the target's resource-based policy."""

    rule_arn: str
    role: Principal | None
    resource_policy: Sequence[Mapping[str, Any]] = ()


EVENTS_PRINCIPAL: Final = "events.amazonaws.com"


@dataclass
class Authorizer:
    region: str
    account: str
    functions: dict[str, Principal] = field(default_factory=dict)
    function_log_groups: dict[str, str] = field(default_factory=dict)
    state_machines: dict[str, Principal] = field(default_factory=dict)
    rule_targets: dict[str, RuleTarget] = field(default_factory=dict)
    # (role ARN, action) of every allowed check, and every denied check: for least-privilege tests and reports.
    used: set[tuple[str, str]] = field(default_factory=set)
    denied: list[tuple[str, Check]] = field(default_factory=list)
    _decisions: dict[tuple[str, str, str, tuple[tuple[str, str], ...]], bool] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def arns(self) -> Arns:
        return Arns(self.region, self.account)

    def assign_function(self, name: str, principal: Principal, log_group: str) -> None:
        self.functions[name] = principal
        self.function_log_groups[name] = log_group

    def assign_state_machine(self, arn: str, principal: Principal) -> None:
        self.state_machines[arn] = principal

    @contextmanager
    def delivering(self, target_arn: str) -> Iterator[None]:
        """EventBridge delivering a rule's event to ``target_arn``: the calls inside run as the target's role; a
        target without one (a Lambda) must allow the rule in its resource-based policy, else AccessDeniedException."""
        target = self.rule_targets[target_arn]
        if target.role is not None:
            with acting_as(target.role):
                yield
            return
        # The service principal's request carries the rule as aws:SourceArn and its account as aws:SourceAccount.
        check = Check(
            "lambda:InvokeFunction", target_arn, {"aws:SourceArn": target.rule_arn, "aws:SourceAccount": self.account}
        )
        if not is_allowed(for_service(target.resource_policy, EVENTS_PRINCIPAL), check):
            self.denied.append((target.rule_arn, check))
            principal = Principal(EVENTS_PRINCIPAL, ())
            raise _denied_error(boto3.client("lambda", region_name=self.region), "Invoke", principal, check)
        self.used.add((target.rule_arn, check.action))
        yield

    def first_denied(self, principal: Principal, checks: Sequence[Check]) -> Check | None:
        for check in checks:
            key = (principal.role_arn, check.action, check.resource, tuple(sorted(check.context.items())))
            with self._lock:
                allowed = self._decisions.get(key)
                if allowed is None:
                    allowed = self._decisions[key] = is_allowed(principal.statements, check)
                if not allowed:
                    self.denied.append((principal.role_arn, check))
                    return check
                self.used.add((principal.role_arn, check.action))
        return None

    def resource_tags(self, resource: str) -> dict[str, str]:
        """The tags of the EC2 instance a check is on (empty for any other resource)."""
        prefix = self.arns.arn("ec2", "instance/")
        if not resource.startswith(prefix):
            return {}
        tags = ec2_backends[self.account][self.region].describe_tags(filters={"resource-id": [resource[len(prefix) :]]})
        return {tag["key"]: tag["value"] for tag in tags}

    def task_definition_roles(self, task_definition: str) -> list[str]:
        definition = ecs_backends[self.account][self.region].describe_task_definition(task_definition)
        # moto sets the role attributes only when the definition names them.
        return [r for r in (getattr(definition, a, None) for a in ("task_role_arn", "execution_role_arn")) if r]


_principal: ContextVar[Principal | None] = ContextVar("gpu_recovery_iam_principal", default=None)


def current_principal() -> Principal | None:
    """The principal the current call runs as; None for the harness, the fleet and the engine itself."""
    return _principal.get()


@contextmanager
def acting_as(principal: Principal | None) -> Iterator[None]:
    token = _principal.set(principal)
    try:
        yield
    finally:
        _principal.reset(token)


def _denied_error(client: BaseClient, operation: str, principal: Principal, check: Check) -> Exception:
    code, status = DENIED_CODE.get(client.meta.service_model.service_name, _DEFAULT_DENIED)
    policy = "resource-based" if principal.role_arn == EVENTS_PRINCIPAL else "identity-based"
    message = (
        f"User: {principal.role_arn} is not authorized to perform: {check.action} on resource: {check.resource} "
        f"because no {policy} policy allows the action"
    )
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": str(uuid.uuid4())},
    }
    return client.exceptions.from_code(code)(response, operation)


@contextmanager
def correct_iam_not_enforced(authorizer: Authorizer) -> Iterator[None]:
    make_api_call = BaseClient._make_api_call
    invoke_lambda = LambdaFunction._invoke_lambda
    service_execution = StateTaskService._eval_execution
    lambda_execution = StateTaskLambda._eval_execution

    def authorized_api_call(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        principal = _principal.get()
        if principal is not None:
            service = client.meta.service_model.service_name
            checks = [
                with_resource_tags(check, authorizer.resource_tags(check.resource))
                for check in checks_for(authorizer.arns, service, operation, params, authorizer.task_definition_roles)
            ]
            denied = authorizer.first_denied(principal, checks)
            if denied is not None:
                raise _denied_error(client, operation, principal, denied)
        return make_api_call(client, operation, params)

    def as_function(function: LambdaFunction, event: str | None = None) -> tuple[str, bool, str]:
        name = function.function_name
        principal = authorizer.functions.get(name)
        if principal is None:
            return invoke_lambda(function, event)
        # One stream name for every invocation: the decision is the same for each of the group's streams (cached).
        stream_arn = log_stream_arn(authorizer.arns, authorizer.function_log_groups[name], LAMBDA_LOG_STREAM)
        # The runtime creates the invocation's stream and writes to it; denied, the logs are lost, not the call.
        authorizer.first_denied(
            principal, [Check("logs:CreateLogStream", stream_arn), Check("logs:PutLogEvents", stream_arn)]
        )
        with acting_as(principal):
            return invoke_lambda(function, event)

    def machine_principal(env: Any) -> Principal | None:
        machine = env.states.context_object.context_object_data["StateMachine"]["Id"]
        return authorizer.state_machines.get(machine)

    def as_state_machine_service(state: StateTaskService, env: Any) -> None:
        principal = machine_principal(env)
        if principal is not None and state.resource.resource_arn == "arn:aws:states:::ecs:runTask.sync":
            denied = authorizer.first_denied(principal, ecs_sync_rule_checks(authorizer.arns))
            if denied is not None:
                # The integration cannot set up its rule: the task fails as a denied ECS integration call.
                raise _denied_error(boto3.client("ecs", region_name=authorizer.region), "RunTask", principal, denied)
        with acting_as(principal):
            service_execution(state, env)

    def as_state_machine_lambda(state: StateTaskLambda, env: Any) -> None:
        with acting_as(machine_principal(env)):
            lambda_execution(state, env)

    with (
        mock.patch.object(BaseClient, "_make_api_call", authorized_api_call),
        mock.patch.object(LambdaFunction, "_invoke_lambda", as_function),
        mock.patch.object(StateTaskService, "_eval_execution", as_state_machine_service),
        mock.patch.object(StateTaskLambda, "_eval_execution", as_state_machine_lambda),
    ):
        yield
