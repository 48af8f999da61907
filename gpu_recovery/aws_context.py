"""Where the deployed recovery lives, for the operator commands.

Each resource comes from, in order: its command-line flag, its environment variable, the CloudFormation stack's
outputs (stack name from --stack-name, GPU_RECOVERY_STACK_NAME or STACK_NAME, default EcsGpuRecoveryStack). The
cluster is not a stack output: it is read from the deployed state machine definition (the DCGM check's
`Cluster`), unless given. AWS credentials, profile and region come from the usual boto3 settings (AWS_PROFILE,
AWS_REGION / AWS_DEFAULT_REGION, ...) or --profile / --region; boto3 itself honours AWS_ENDPOINT_URL and
AWS_ENDPOINT_URL_<SERVICE>, so the commands work against any endpoint (a local emulator) unchanged.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from gpu_recovery.asl import walk_states
from recovery.settings import Settings, StepSettings
from recovery.tables import Tables

DEFAULT_STACK_NAME = "EcsGpuRecoveryStack"


class ContextError(Exception):
    """The deployment cannot be found as configured: a usage error (exit code 2)."""


@dataclass(frozen=True)
class Resource:
    flag: str
    env: str
    output: str

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


STATE_MACHINE = Resource("--state-machine-arn", "GPU_RECOVERY_STATE_MACHINE_ARN", "StateMachineArn")
TASK_TABLE = Resource("--task-table", "GPU_RECOVERY_TASK_TABLE", "TaskTableName")
JOB_TABLE = Resource("--job-table", "GPU_RECOVERY_JOB_TABLE", "JobTableName")
NODE_TABLE = Resource("--node-table", "GPU_RECOVERY_NODE_TABLE", "NodeTableName")
CLUSTER_FLAG, CLUSTER_ENV = "--cluster", "GPU_RECOVERY_CLUSTER"
STACK_ENVS = ("GPU_RECOVERY_STACK_NAME", "STACK_NAME")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The deployment options every command that talks to AWS takes."""
    group = parser.add_argument_group(
        "deployment", "found from the stack's outputs unless given (flag > environment variable > stack output)"
    )
    group.add_argument(
        "--stack-name", help=f"CloudFormation stack (env {' or '.join(STACK_ENVS)}; default {DEFAULT_STACK_NAME})"
    )
    for resource in (STATE_MACHINE, TASK_TABLE, JOB_TABLE, NODE_TABLE):
        group.add_argument(resource.flag, help=f"env {resource.env}; default: stack output {resource.output}")
    group.add_argument(
        CLUSTER_FLAG, help=f"ECS cluster name or ARN (env {CLUSTER_ENV}; default: the deployed state machine's)"
    )


class AwsContext:
    """The deployment's resources, resolved lazily: a command only looks up what it uses."""

    def __init__(
        self, args: argparse.Namespace, environ: Mapping[str, str] | None = None, region: str | None = None
    ) -> None:
        """``region``: where the thing acted on lives (a task ARN's region), used unless --region is given."""
        self.args = args
        self.environ = os.environ if environ is None else environ
        profile, region = getattr(args, "profile", None), getattr(args, "region", None) or region
        if profile or region:
            # The step code (recovery.tables) uses boto3's default session: configure that one.
            try:
                boto3.setup_default_session(profile_name=profile, region_name=region)
            except BotoCoreError as error:
                raise ContextError(str(error)) from None

    # ---- resolution -----------------------------------------------------------------------------
    @property
    def stack_name(self) -> str:
        given = getattr(self.args, "stack_name", None)
        return given or next((self.environ[e] for e in STACK_ENVS if self.environ.get(e)), DEFAULT_STACK_NAME)

    @cached_property
    def stack_outputs(self) -> dict[str, str]:
        try:
            stacks = boto3.client("cloudformation").describe_stacks(StackName=self.stack_name)["Stacks"]
        except ClientError as error:
            raise ContextError(
                f"cannot read stack {self.stack_name!r}: {error.response['Error'].get('Message', error)} "
                "(set --stack-name, or give the resources with flags / environment variables)"
            ) from None
        return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}

    def resolve(self, resource: Resource) -> str:
        given = getattr(self.args, resource.dest, None) or self.environ.get(resource.env)
        if given:
            return str(given)
        value = self.stack_outputs.get(resource.output)
        if not value:
            raise ContextError(
                f"stack {self.stack_name!r} has no output {resource.output}; give {resource.flag} or set {resource.env}"
            )
        return value

    @cached_property
    def state_machine_arn(self) -> str:
        return self.resolve(STATE_MACHINE)

    @cached_property
    def table_names(self) -> dict[str, str]:
        return {"task": self.resolve(TASK_TABLE), "job": self.resolve(JOB_TABLE), "node": self.resolve(NODE_TABLE)}

    @cached_property
    def definition(self) -> dict[str, Any]:
        described = self.sfn.describe_state_machine(stateMachineArn=self.state_machine_arn)
        return dict(json.loads(described["definition"]))

    @cached_property
    def step_environment(self) -> dict[str, str]:
        """The ClassifyFailure Lambda's environment: the deployment's settings (JOB_KEY, DRY_RUN, ...).
        Empty when it cannot be read (no lambda:GetFunctionConfiguration); callers fall back to defaults."""
        try:
            states = dict(walk_states(self.definition.get("States", {})))
            function = states.get("ClassifyFailure", {}).get("Resource", "")
            if not function.startswith("arn:"):
                return {}
            config = boto3.client("lambda").get_function_configuration(FunctionName=function)
        except (ClientError, ContextError, BotoCoreError):
            return {}
        return dict(config.get("Environment", {}).get("Variables", {}))

    @cached_property
    def cluster(self) -> str:
        given = getattr(self.args, "cluster", None) or self.environ.get(CLUSTER_ENV)
        if given:
            return str(given)
        for _, state in walk_states(self.definition.get("States", {})):
            cluster = (state.get("Parameters") or {}).get("Cluster")
            if ":states:::ecs:runTask" in str(state.get("Resource", "")) and cluster:
                return str(cluster)
        if self.step_environment.get("ECS_CLUSTER_NAME"):
            return self.step_environment["ECS_CLUSTER_NAME"]
        raise ContextError(f"cannot find the cluster in the state machine definition; give {CLUSTER_FLAG}")

    @property
    def cluster_name(self) -> str:
        return self.cluster.rsplit("/", 1)[-1]

    @cached_property
    def cluster_arn(self) -> str:
        if self.cluster.startswith("arn:"):
            return self.cluster
        clusters = self.ecs.describe_clusters(clusters=[self.cluster])["clusters"]
        if not clusters:
            raise ContextError(f"ECS cluster {self.cluster!r} not found")
        return str(clusters[0]["clusterArn"])

    def setting(self, name: str) -> str:
        """A step Lambda setting: the environment variable GPU_RECOVERY_<NAME>, else the deployed value, else its
        default."""
        return (
            self.environ.get(f"GPU_RECOVERY_{name}")
            or self.step_environment.get(name)
            or StepSettings.default_text(name)
        )

    @cached_property
    def settings(self) -> Settings:
        """The step Lambdas' settings as deployed, with this context's tables and cluster."""
        values: dict[str, str] = dict(self.step_environment)
        values |= {
            "TASK_TABLE_NAME": self.table_names["task"],
            "JOB_TABLE_NAME": self.table_names["job"],
            "NODE_TABLE_NAME": self.table_names["node"],
            "ECS_CLUSTER_NAME": self.cluster_name,
            "JOB_KEY": self.setting("JOB_KEY"),
        }
        return Settings.model_validate(values)

    @cached_property
    def tables(self) -> Tables:
        names = self.table_names
        return Tables(names["task"], names["job"], names["node"], int(self.setting("HISTORY_TTL_DAYS")))

    # ---- clients --------------------------------------------------------------------------------
    @cached_property
    def sfn(self) -> Any:
        return boto3.client("stepfunctions")

    @cached_property
    def ecs(self) -> Any:
        return boto3.client("ecs")

    def who(self) -> str:
        """Who is acting: the caller's identity (STS), else the local user name."""
        try:
            return str(boto3.client("sts").get_caller_identity()["Arn"])
        except (ClientError, BotoCoreError):
            return os.environ.get("USER") or getpass.getuser()
