"""`gpu-recovery classify`: what ClassifyFailure would decide for an input, starting nothing."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from gpu_recovery import aws_context
from gpu_recovery.aws_context import AwsContext
from gpu_recovery.cli_output import FAILED, OK, USAGE, CommandError, command, print_json

NAME = "classify"


def read_input(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()  # noqa: SIM115
    except OSError as error:
        raise CommandError(f"cannot read {path}: {error.strerror}", USAGE) from None
    except UnicodeDecodeError as error:
        raise CommandError(f"{path} is not UTF-8 text (byte {error.start}: {error.reason})", USAGE) from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise CommandError(f"{path} is not JSON: {error}", USAGE) from None


def offline_settings(args: argparse.Namespace, environ: Mapping[str, str]) -> Any:
    """--offline: the step's settings without reading the deployment: infra.config's defaults, overridden by
    GPU_RECOVERY_<NAME>, with the cluster from --cluster / GPU_RECOVERY_CLUSTER."""
    from infra.config import Config  # noqa: PLC0415
    from recovery.settings import Settings  # noqa: PLC0415

    cluster = args.cluster or environ.get(aws_context.CLUSTER_ENV)
    if not cluster:
        raise CommandError(f"--offline needs the cluster: give --cluster or set {aws_context.CLUSTER_ENV}", USAGE)
    values = Config().lambda_environment() | {"ECS_CLUSTER_NAME": cluster.rsplit("/", 1)[-1]}
    values |= {name: environ[f"GPU_RECOVERY_{name}"] for name in values if f"GPU_RECOVERY_{name}" in environ}
    return Settings.model_validate(values)


@command(NAME)
def run(args: argparse.Namespace) -> int:
    # The step's own code: the same input parsing (InvalidInput) and the same pure decisions.
    from classify_failure import read_request  # noqa: PLC0415 - loads the step module (and Powertools) only here

    from recovery.aws import Ecs  # noqa: PLC0415
    from recovery.models import Decision, InvalidInput  # noqa: PLC0415
    from recovery.policy import classify_task, job_identity  # noqa: PLC0415

    class OfflineEcs(Ecs):
        """The one ECS call ClassifyFailure makes (a manual request's DescribeTasks), refused with --offline."""

        def describe_tasks(self, task_arns: list[str], cluster: str | None = None) -> Any:
            raise CommandError("a manual request needs DescribeTasks: give the ECS event, or drop --offline", USAGE)

    request = read_input(args.event_file)
    context = None if args.offline else AwsContext(args)
    settings = offline_settings(args, os.environ) if context is None else context.settings
    cluster = settings.ECS_CLUSTER_NAME if context is None else context.cluster
    ecs = OfflineEcs(cluster) if context is None else Ecs(cluster)
    try:
        task, manual, reason, dry_run = read_request(request, settings, ecs)
    except InvalidInput as error:
        result = {"decision": "INVALID_INPUT", "reason": str(error), "started": False}
        if args.json:
            print_json(result)
        else:
            print("Decision  INVALID INPUT (the execution would fail in RejectInvalidInput)")
            print(f"Reason    {error}")
        return FAILED
    if context is None:
        # Offline, a cluster given by name is the task's cluster when the names match (no DescribeClusters).
        given = args.cluster or os.environ[aws_context.CLUSTER_ENV]
        same_name = task.cluster_arn.rsplit("/", 1)[-1] == given
        cluster_arn = task.cluster_arn if same_name and not given.startswith("arn:") else given
    else:
        cluster_arn = context.cluster_arn
    previous = None if args.no_history or context is None else context.tables.get_task(task.task_arn)
    decision, why = classify_task(
        task, cluster_arn, manual=manual, previous=previous, dcgm_task_family=settings.DCGM_TASK_FAMILY
    )
    job_id, managed = job_identity(task, settings.JOB_KEY)
    result = {
        "decision": decision.value,
        "reason": why,
        "taskArn": task.task_arn,
        "source": "manual" if manual else "event",
        "inputReason": reason,
        "dryRun": dry_run,
        "jobId": job_id if decision == Decision.RECOVER else None,
        "jobKey": settings.JOB_KEY,
        "managedByService": managed,
        "clusterArn": cluster_arn,
        "duplicateCheck": not (args.no_history or args.offline),
        "started": False,
    }
    if args.json:
        print_json(result)
        return OK
    print(f"Decision  {decision.value}")
    print(f"Reason    {why}")
    print(f"Task      {task.task_arn} ({'manual request' if manual else f'event version {task.version}'})")
    if decision == Decision.RECOVER:
        service = ", owned by an ECS service" if managed else ""
        print(f"Job       {job_id} (JOB_KEY={settings.JOB_KEY}{service})")
        print(f"Dry run   {'yes' if dry_run else 'no'}")
    if args.no_history or args.offline:
        print(f"(duplicate check skipped: {'--offline' if args.offline else '--no-history'})")
    print("Nothing was started.")
    return OK


def register(commands: Any) -> None:
    parser = commands.add_parser(
        NAME,
        help="what the workflow would decide for an ECS event or manual request, starting nothing",
        description=(
            "Run ClassifyFailure's own input parsing and decision (recovery.policy.classify_task, job_identity) "
            "on an `ECS Task State Change` event or a manual request {taskArn, reason, dryRun}: RECOVER (and the "
            "job), IGNORE and why, or DUPLICATE (against the task table; skip with --no-history). Uses the "
            "deployed JOB_KEY and cluster; nothing is written or started. Exit codes: 0 decided, 1 the workflow "
            "would reject the input (InvalidInput) or an AWS error, 2 unreadable file / usage error."
        ),
    )
    parser.add_argument("event_file", metavar="EVENT_FILE", help="JSON file with the execution input ('-': stdin)")
    parser.add_argument("--no-history", action="store_true", help="skip the duplicate check (no table read)")
    parser.add_argument(
        "--offline",
        action="store_true",
        help=(
            "no AWS call at all: needs --cluster, skips the duplicate check, and uses the default settings "
            "(override: GPU_RECOVERY_JOB_KEY, GPU_RECOVERY_DRY_RUN, ...) instead of the deployed ones"
        ),
    )
    aws_context.add_arguments(parser)
    parser.set_defaults(func=run)
