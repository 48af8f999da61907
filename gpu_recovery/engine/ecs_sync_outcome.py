"""Corrections: how moto's ``ecs:runTask`` integration decides a task's outcome.

Two moto 5.2.5 behaviours of ``StateTaskServiceEcs`` (``.../state_task/service/state_task_service_ecs.py``), each
corrected by its own function and test (``tests/workflow/engine/test_ecs_sync_outcome.py``):

* ``ecs_sync_ignores_exit_code``: the ``.sync`` resolver succeeds as soon as the task is ``STOPPED``, whatever its
  containers' exit codes. AWS fails the state with ``States.TaskFailed`` and the task description (PascalCase, the
  same JSON a success outputs) as ``Cause`` unless every essential container exited 0.
* ``ecs_run_task_ignores_failures``: when RunTask places no task and returns ``failures``, moto indexes
  ``Tasks[0]`` and the state dies with ``States.Runtime`` (``IndexError``). AWS fails a ``.sync`` state with the
  failures in ``Cause``, and returns the ``{Tasks: [], Failures: [...]}`` envelope for request-response.

Both only read what ECS reports (``describe_tasks``, ``describe_task_definition``, RunTask's ``failures``): the
simulated fleet decides exit codes, stop codes and placement in moto's ECS backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, cast
from unittest import mock

from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import StateCredentials
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
    ResourceCondition,
    ResourceRuntimePart,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_ecs import (
    StateTaskServiceEcs,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils import boto_client
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

from gpu_recovery.engine.iam_not_enforced import acting_as

TASK_FAILED: Final = "States.TaskFailed"
# The error AWS reports when RunTask (.sync) places no task. Public evidence is thin: the only account found
# (review of floci-io/floci PR #1564, comparing with AWS) names "AmazonECS.Unknown". Catch it with States.ALL.
RUN_TASK_FAILURES_ERROR: Final = "AmazonECS.Unknown"


def _task_failure(task: StateTaskServiceEcs, env: Environment, error: str, cause: Any) -> FailureEventException:
    # moto refuses "States." names as custom error names; those are its StatesErrorName.
    error_name: ErrorName = (
        StatesErrorName(typ=StatesErrorNameType.from_name(error))
        if error.startswith("States.")
        else CustomErrorName(error)
    )
    return FailureEventException(
        FailureEvent(
            env=env,
            error_name=error_name,
            event_type=HistoryEventType.TaskFailed,
            # EventDetails is a total TypedDict of which moto always fills exactly one key.
            event_details=cast(
                EventDetails,
                {
                    "taskFailedEventDetails": TaskFailedEventDetails(
                        error=error,
                        cause=to_json_str(cause),
                        resource=task._get_sfn_resource(),
                        resourceType=task._get_sfn_resource_type(),
                    )
                },
            ),
        )
    )


def task_succeeded(described: dict[str, Any], essential_containers: set[str]) -> bool:
    """A STOPPED task (PascalCase description) succeeded when every essential container exited 0."""
    containers = [c for c in described.get("Containers", []) if c.get("Name") in essential_containers]
    return bool(containers) and all(c.get("ExitCode") == 0 for c in containers)


def _essential_containers(ecs_client: Any, task_definition_arn: str) -> set[str]:
    # Step Functions reads the definition as the service, not as the state machine's role (the documented policy
    # for runTask.sync has no ecs:DescribeTaskDefinition).
    with acting_as(None):
        definition = ecs_client.describe_task_definition(taskDefinition=task_definition_arn)["taskDefinition"]
    # "essential" defaults to true in ECS.
    return {c["name"] for c in definition["containerDefinitions"] if c.get("essential", True)}


def _build_sync_resolver(
    self: StateTaskServiceEcs,
    env: Environment,
    resource_runtime_part: ResourceRuntimePart,
    normalised_parameters: dict[str, Any],
    state_credentials: StateCredentials,
) -> Callable[[], dict[str, Any] | None]:
    # By module, not by name: integration_client_per_call replaces the module's function.
    ecs_client = boto_client.boto_client_for(
        service="ecs", region=resource_runtime_part.region, state_credentials=state_credentials
    )
    submitted: dict[str, Any] = env.stack.pop()
    task_arn: str = submitted["Tasks"][0]["TaskArn"]
    cluster_arn: str = submitted["Tasks"][0]["ClusterArn"]

    def _sync_resolver() -> dict[str, Any] | None:
        output = ecs_client.describe_tasks(cluster=cluster_arn, tasks=[task_arn])
        if output["tasks"][0]["lastStatus"] != "STOPPED":
            return None
        essential = _essential_containers(ecs_client, output["tasks"][0]["taskDefinitionArn"])
        output.pop("ResponseMetadata", None)
        self._normalise_response(response=output, service_action_name="describe_tasks")
        described: dict[str, Any] = output["Tasks"][0]
        if task_succeeded(described, essential):
            return described
        raise _task_failure(self, env, TASK_FAILED, described)

    return _sync_resolver


@contextmanager
def correct_ecs_sync_ignores_exit_code() -> Iterator[None]:
    with mock.patch.object(StateTaskServiceEcs, "_build_sync_resolver", _build_sync_resolver):
        yield


@contextmanager
def correct_ecs_run_task_ignores_failures() -> Iterator[None]:
    original = StateTaskServiceEcs._eval_service_task

    def _eval_service_task(
        self: StateTaskServiceEcs,
        env: Environment,
        resource_runtime_part: ResourceRuntimePart,
        normalised_parameters: dict[str, Any],
        state_credentials: StateCredentials,
    ) -> None:
        if self._get_boto_service_action() != "run_task":
            original(self, env, resource_runtime_part, normalised_parameters, state_credentials)
            return
        ecs_client = boto_client.boto_client_for(
            region=resource_runtime_part.region, service="ecs", state_credentials=state_credentials
        )
        response = ecs_client.run_task(**normalised_parameters)
        response.pop("ResponseMetadata", None)
        self._normalise_response(response=response, service_action_name="run_task")
        if response.get("Tasks"):
            # Placed: like moto, output the task's description rather than RunTask's response.
            described = ecs_client.describe_tasks(
                cluster=response["Tasks"][0]["ClusterArn"], tasks=[response["Tasks"][0]["TaskArn"]]
            )
            described.pop("ResponseMetadata", None)
            self._normalise_response(response=described, service_action_name="describe_tasks")
            env.stack.append(described)
        elif self.resource.condition in (ResourceCondition.Sync, ResourceCondition.WaitForTaskToken):
            raise _task_failure(self, env, RUN_TASK_FAILURES_ERROR, response)
        else:
            env.stack.append(response)

    with mock.patch.object(StateTaskServiceEcs, "_eval_service_task", _eval_service_task):
        yield
