"""LocalEngine: the real ASL on moto's Step Functions interpreter, step Lambdas in-process, time on a SimClock."""

from __future__ import annotations

import io
import json
import os
import re
import time
import zipfile
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Final
from unittest import mock

import boto3
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.config import default_user_config

from gpu_recovery import history
from gpu_recovery.clock import SimClock
from gpu_recovery.engine.definition_parsed_per_execution import correct_definition_parsed_per_execution
from gpu_recovery.engine.dynamodb_writes_not_atomic import correct_dynamodb_writes_not_atomic
from gpu_recovery.engine.ecs_sync_outcome import (
    correct_ecs_run_task_ignores_failures,
    correct_ecs_sync_ignores_exit_code,
)
from gpu_recovery.engine.fault_injection import FaultInjector, injecting
from gpu_recovery.engine.history_path import StateVisit, state_visits
from gpu_recovery.engine.history_unbounded import correct_history_unbounded
from gpu_recovery.engine.iam_not_enforced import Authorizer, correct_iam_not_enforced
from gpu_recovery.engine.integration_client_per_call import correct_integration_client_per_call
from gpu_recovery.engine.json_path_quirks import correct_json_path_quirks
from gpu_recovery.engine.lambda_requires_docker import correct_lambda_requires_docker
from gpu_recovery.engine.real_time_waits import (
    correct_callback_wait_real_time,
    correct_history_wall_clock,
    correct_retry_interval_real_time,
    correct_sync_poll_real_time,
    correct_threads_real_time,
    correct_wait_state_real_time,
)
from gpu_recovery.engine.request_limits import correct_request_limits_not_enforced
from gpu_recovery.engine.serializer_aliases_per_value import correct_serializer_aliases_per_value
from gpu_recovery.engine.service_casing_unconverted import correct_service_casing_unconverted
from gpu_recovery.engine.service_error_names import correct_service_error_names
from gpu_recovery.engine.service_models_loaded_per_session import correct_service_models_loaded_per_session

# Step Lambda handlers ("classify_failure.handler") resolve from the Lambda code asset root.
from gpu_recovery.resources import FUNCTIONS_DIR

LAMBDA_RUNTIME: Final = "python3.11"
_ROLE_NAME: Final = "gpu-recovery-local-engine"
_FINAL_STATUSES: Final = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"})
# ${Key} as CloudFormation Fn::Sub reads it (what CDK definition_substitutions become); ${!Key} is a literal.
_SUBSTITUTION: Final = re.compile(r"\$\{(!?)([^}]*)\}")
# Real seconds between two describe_execution calls while executions still run.
_WAIT_POLL_REAL_SECONDS: Final = 0.05


def _dummy_zip() -> bytes:
    # moto stores the package but never runs it: handlers are imported from FUNCTIONS_DIR.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "code is imported in-process by gpu_recovery.engine")
    return buffer.getvalue()


def substitute(definition: str, substitutions: dict[str, str]) -> str:
    """Resolve ``${Key}`` like CDK ``DefinitionBody.from_file`` + ``definition_substitutions``; fail on any left."""
    missing: set[str] = set()

    def _replace(match: re.Match[str]) -> str:
        literal, key = match.groups()
        if literal:
            return "${" + key + "}"
        if key not in substitutions:
            missing.add(key)
            return match.group(0)
        return substitutions[key]

    resolved = _SUBSTITUTION.sub(_replace, definition)
    if missing:
        raise ValueError(f"unsubstituted placeholders in the definition: {sorted(missing)}")
    json.loads(resolved)  # a substitution that breaks the JSON must fail here, not at CreateStateMachine
    return resolved


class LocalEngine:
    """Runs state machines on moto with every correction of docs/local-engine.md applied, on ``clock``.

    A context manager: on enter it starts ``mock_aws`` (unless ``mock=False``: the caller then runs inside
    ``mock_aws(config={"stepfunctions": {"execute_state_machine": True}})``) and applies the corrections; on exit
    it restores everything, including ``os.environ`` (the step Lambdas' shared environment is written there).
    ``handler_paths`` are searched before FUNCTIONS_DIR for Lambda handlers (tests keep theirs there);
    ``without`` names corrections to leave off, to see moto's own behaviour.
    """

    def __init__(
        self,
        clock: SimClock,
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT_ID,
        *,
        mock: bool = True,
        handler_paths: Sequence[Path] = (),
        without: Collection[str] = (),
    ) -> None:
        self.clock = clock
        self.region = region
        self.account_id = account_id
        self._mock = mock
        self._handler_paths = [*handler_paths, FUNCTIONS_DIR]
        # Policies of the deployed roles (assigned by the caller, e.g. the local stack); IAM checks every call.
        self.authorizer = Authorizer(region, account_id)
        # AWS errors to inject into the stack's calls (a scenario's api_faults); none unless loaded.
        self.faults = FaultInjector()
        unknown = set(without) - set(self._corrections())
        if unknown:
            raise ValueError(f"unknown corrections: {sorted(unknown)}")
        # Corrections left off: the tests use this to show the moto behaviour each one corrects.
        self._without = frozenset(without)
        self._stack: ExitStack | None = None
        self._function_env: dict[str, str] = {}
        self._role_arn: str | None = None

    def __enter__(self) -> LocalEngine:
        with ExitStack() as stack:
            stack.enter_context(
                mock.patch.dict(
                    os.environ,
                    {
                        "AWS_DEFAULT_REGION": self.region,
                        "AWS_REGION": self.region,
                        "MOTO_ACCOUNT_ID": self.account_id,
                        # moto fills every new EC2 backend with its catalogue of ~5,000 public AMIs (0.3 CPU s per
                        # mock_aws, moto/settings.py ec2_load_default_amis); nothing here looks an image up.
                        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
                    },
                )
            )
            if self._mock:
                stack.enter_context(mock_aws(config={"stepfunctions": {"execute_state_machine": True}}))
            elif not default_user_config.get("stepfunctions", {}).get("execute_state_machine"):
                raise RuntimeError(
                    'mock=False needs mock_aws(config={"stepfunctions": {"execute_state_machine": True}})'
                )
            for name, correction in self._corrections().items():
                if name not in self._without:
                    stack.enter_context(correction)
            self._sfn = boto3.client("stepfunctions", region_name=self.region)
            self._lambda = boto3.client("lambda", region_name=self.region)
            self._iam = boto3.client("iam", region_name=self.region)
            self._stack = stack.pop_all()
        return self

    def _corrections(self) -> dict[str, AbstractContextManager[None]]:
        """Every correction, by the name of the moto behaviour it corrects (docs/local-engine.md)."""
        return {
            "lambda_requires_docker": correct_lambda_requires_docker(self._handler_paths),
            "service_casing_unconverted": correct_service_casing_unconverted(),
            "json_path_quirks": correct_json_path_quirks(),
            "wait_state_real_time": correct_wait_state_real_time(self.clock),
            "retry_interval_real_time": correct_retry_interval_real_time(self.clock),
            "sync_poll_real_time": correct_sync_poll_real_time(self.clock),
            "threads_real_time": correct_threads_real_time(self.clock),
            "callback_wait_real_time": correct_callback_wait_real_time(self.clock),
            "history_wall_clock": correct_history_wall_clock(self.clock),
            "history_unbounded": correct_history_unbounded(),
            "ecs_sync_ignores_exit_code": correct_ecs_sync_ignores_exit_code(),
            "ecs_run_task_ignores_failures": correct_ecs_run_task_ignores_failures(),
            "dynamodb_writes_not_atomic": correct_dynamodb_writes_not_atomic(),
            "definition_parsed_per_execution": correct_definition_parsed_per_execution(),
            "integration_client_per_call": correct_integration_client_per_call(),
            "serializer_aliases_per_value": correct_serializer_aliases_per_value(),
            "service_models_loaded_per_session": correct_service_models_loaded_per_session(),
            "service_error_names": correct_service_error_names(),
            "request_limits_not_enforced": correct_request_limits_not_enforced(),
            # After lambda_requires_docker: it wraps the in-process Lambda invocation.
            "iam_not_enforced": correct_iam_not_enforced(self.authorizer),
            # Not a moto behaviour: moto has no way to fail a call it implements (docs/local-engine.md).
            "fault_injection": injecting(self.faults),
        }

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def _role(self) -> str:
        if self._role_arn is None:
            trust = {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
            role = self._iam.create_role(RoleName=_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))
            self._role_arn = role["Role"]["Arn"]
        return self._role_arn

    def deploy_function(self, name: str, handler: str, environment: dict[str, str]) -> str:
        """Create Lambda ``name`` running ``handler`` (``module.function``) in-process; returns its ARN.

        Handlers run in this process, so their environment is the process's: functions may only add variables or
        repeat the same values (ours share one environment), never give one variable two values."""
        clashes = {k for k, v in environment.items() if self._function_env.get(k, v) != v}
        if clashes:
            raise ValueError(f"{name}: environment variables {sorted(clashes)} differ from another function's")
        self._function_env.update(environment)
        response = self._lambda.create_function(
            FunctionName=name,
            Runtime=LAMBDA_RUNTIME,
            Role=self._role(),
            Handler=handler,
            Code={"ZipFile": _dummy_zip()},
            Environment={"Variables": environment},
            Timeout=60,
        )
        return str(response["FunctionArn"])

    def deploy_state_machine(self, name: str, definition_file: Path, substitutions: dict[str, str]) -> str:
        definition = substitute(Path(definition_file).read_text(), substitutions)
        response = self._sfn.create_state_machine(name=name, definition=definition, roleArn=self._role())
        return str(response["stateMachineArn"])

    def start_execution(self, state_machine_arn: str, name: str, input: dict[str, Any]) -> str:
        response = self._sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(input))
        return str(response["executionArn"])

    def wait(self, execution_arn: str, timeout: float = 120.0) -> dict[str, Any]:
        """describe_execution once the execution is final; ``timeout`` is in real seconds.

        Asks only while the clock's scheduler has nothing left to run: polling would take the CPU the executions
        need, and even a read draws a request id from moto's seeded random source, which the simulation uses."""
        deadline = time.monotonic() + timeout
        while True:
            if self.clock.wait_idle(_WAIT_POLL_REAL_SECONDS):
                description: dict[str, Any] = self._sfn.describe_execution(executionArn=execution_arn)
                if description["status"] in _FINAL_STATUSES:
                    return description
                # Idle yet not final: moto's threads are left unscheduled (a test of that correction), or the
                # execution waits for something outside the simulation.
                time.sleep(_WAIT_POLL_REAL_SECONDS)
            if time.monotonic() > deadline:
                status = self._sfn.describe_execution(executionArn=execution_arn)["status"]
                raise TimeoutError(f"{execution_arn} still {status} after {timeout} real seconds")

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return history.fetch(self._sfn, execution_arn)

    def path(self, execution_arn: str, history: list[dict[str, Any]] | None = None) -> list[StateVisit]:
        """The states the execution entered; pass its ``history`` when you already have it (moto serializes the
        whole history on every GetExecutionHistory, which is most of the cost of reading a large one)."""
        return state_visits(self.history(execution_arn) if history is None else history, self.clock.start)
