"""Correction: moto names service integration errors differently from Step Functions.

In moto 5.2.5 an ``aws-sdk:`` integration prefixes the error with the service name as written in the resource
(``StateTaskServiceAwsSdk._from_error`` has PascalCase bindings for DynamoDB and SFN only: ``ecs.AccessDeniedException``
where AWS raises ``Ecs.AccessDeniedException``), and the ECS optimized integration turns every service error into
``States.Runtime`` (no ``_from_error`` of its own). This correction names every ClientError of a service integration
as Step Functions does (``error_names.integration_error``): the modelled exception under the integration's prefix,
or the generic ``<Service>.<Service>Exception`` / ``ECS.AmazonECSException`` for an undeclared one (throttling).
Remove when ``test_service_error_names.py`` reports moto's own names match.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from botocore.exceptions import ClientError
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb import (
    StateTaskServiceDynamoDB,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs import (
    StateTaskServiceEcs,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns import (
    StateTaskServiceSns,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

from gpu_recovery.engine.error_names import integration_error

_CORRECTED = (StateTaskServiceAwsSdk, StateTaskServiceEcs, StateTaskServiceDynamoDB, StateTaskServiceSns)


def _failure(state: Any, env: Any, ex: ClientError) -> FailureEvent:
    modelled = type(ex) is not ClientError  # botocore raises a subclass named after the shape for modelled errors
    error = integration_error(state.resource.resource_arn, type(ex).__name__, modelled)
    cause = f"{ex.response['Error'].get('Message', '')} (Error Code: {ex.response['Error'].get('Code')})"
    return FailureEvent(
        env=env,
        error_name=CustomErrorName(error),
        event_type=HistoryEventType.TaskFailed,
        event_details=EventDetails(  # type: ignore[typeddict-item]  # moto's TypedDict lists every kind as required
            taskFailedEventDetails=TaskFailedEventDetails(
                resource=state._get_sfn_resource(),
                resourceType=state._get_sfn_resource_type(),
                error=error,
                cause=cause,
            )
        ),
    )


@contextmanager
def correct_service_error_names() -> Iterator[None]:
    with ExitStack() as stack:
        for cls in _CORRECTED:
            original = cls._from_error

            def from_error(state: Any, env: Any, ex: Exception, original: Any = original) -> FailureEvent:
                if isinstance(ex, ClientError):
                    return _failure(state, env, ex)
                return original(state, env, ex)

            stack.enter_context(mock.patch.object(cls, "_from_error", from_error))
        yield
