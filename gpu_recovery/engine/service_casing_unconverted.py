"""Correction: moto passes ASL PascalCase parameters to AWS APIs unconverted (moto issue #10076).

In moto 5.2.5, ``StateTaskService._normalise_parameters`` and ``_normalise_response``
(``.../state_task/service/state_task_service.py``) are empty: the ASL's ``{"Cluster": ...}`` reaches the
camelCase ECS API as an unknown key (every ECS integration fails with ``'Cluster'``), and the camelCase ECS
response reaches the ASL unconverted, where ``$.ContainerInstances[0].AgentConnected`` finds nothing.
moto keeps the shape-walking helpers (``_to_boto_request``, ``_from_boto_response``); this correction gives the two
hooks bodies that drive those helpers with botocore's operation model, as AWS does:

* request keys are matched to the operation's input members case-insensitively (``Cluster`` -> ``cluster``,
  ``PlacementConstraints[].Type`` -> ``type``, ``Overrides.ContainerOverrides[].Environment[].Name`` -> ``name``);
  query-protocol APIs (EC2) already use PascalCase member names, so ``InstanceIds`` stays ``InstanceIds``;
* response members become PascalCase (``containerInstances[].agentConnected`` ->
  ``ContainerInstances[].AgentConnected``), and datetimes become ISO-8601 strings — left as ``datetime`` they make
  ``describe_execution`` crash when it serialises the output.

Applied to the ECS optimized integration and to every ``aws-sdk:`` integration, the two moto leaves that call
AWS APIs through these hooks unconverted. Remove when ``test_service_casing_unconverted.py`` reports moto converts.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import botocore.session
from botocore.model import OperationModel
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service import (
    StateTaskService,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs import (
    StateTaskServiceEcs,
)
from moto.stepfunctions.parser.utils import camel_to_snake_case


@functools.cache
def operation_model(service_name: str, action: str) -> OperationModel:
    """botocore's model of ``service_name``'s ``action`` (``describeTasks`` or ``describe_tasks``)."""
    service = botocore.session.get_session().get_service_model(service_name)
    by_snake = {camel_to_snake_case(name): name for name in service.operation_names}
    return service.operation_model(by_snake[camel_to_snake_case(action)])


def _operation_for(
    task: StateTaskService, boto_service_name: str | None, service_action_name: str | None
) -> OperationModel:
    return operation_model(
        task._get_boto_service_name(boto_service_name), service_action_name or task.resource.api_action
    )


def _normalise_parameters(
    self: StateTaskService,
    parameters: dict[str, Any],
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    shape = _operation_for(self, boto_service_name, service_action_name).input_shape
    if shape is not None:
        self._to_boto_request(parameters, shape)


def datetimes_to_iso(value: Any) -> Any:
    """Replace, in place, every datetime inside dicts and lists by its ISO-8601 string; returns ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = datetimes_to_iso(item)
    elif isinstance(value, list):
        value[:] = [datetimes_to_iso(item) for item in value]
    elif isinstance(value, datetime.datetime):
        return value.isoformat()
    return value


def _normalise_response(
    self: StateTaskService,
    response: Any,
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    shape = _operation_for(self, boto_service_name, service_action_name).output_shape
    if shape is not None:
        self._from_boto_response(response, shape)
    datetimes_to_iso(response)


@contextmanager
def correct_service_casing_unconverted() -> Iterator[None]:
    with (
        mock.patch.object(StateTaskServiceEcs, "_normalise_parameters", _normalise_parameters),
        mock.patch.object(StateTaskServiceEcs, "_normalise_response", _normalise_response),
        mock.patch.object(StateTaskServiceAwsSdk, "_normalise_parameters", _normalise_parameters),
        mock.patch.object(StateTaskServiceAwsSdk, "_normalise_response", _normalise_response),
    ):
        yield
