"""`gpu-recovery start` against moto: the checks before anything is started, and what is started."""

from __future__ import annotations

import json
import re

import boto3
import pytest
from cli_helpers import CliRun, Deployment

from gpu_recovery.commands.start import new_execution_name


def executions(deployment: Deployment) -> list[dict[str, str]]:
    sfn = boto3.client("stepfunctions")
    return sfn.list_executions(stateMachineArn=deployment.state_machine_arn)["executions"]


def test_start_uses_the_manual_input_and_a_readable_unique_name(deployment: Deployment, cli: CliRun) -> None:
    task = deployment.tasks[0]
    code, out, err = cli("start", task, "--reason", "xid 79 on rank 3", "--dry-run")
    assert (code, err) == (0, "")
    [execution] = executions(deployment)
    assert re.fullmatch(r"manual-dryrun-[0-9a-f]{32}-\d{8}T\d{6}Z-[0-9a-f]{4}", execution["name"])
    assert execution["executionArn"] in out
    assert "console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/" in out
    described = boto3.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == {"taskArn": task, "reason": "xid 79 on rank 3", "dryRun": True}


def test_start_json(deployment: Deployment, cli: CliRun) -> None:
    code, out, _ = cli("start", deployment.tasks[1], "--json", "--force")
    assert code == 0
    assert json.loads(out)["input"] == {"taskArn": deployment.tasks[1], "reason": "manual request", "dryRun": False}


def test_a_running_task_is_not_recovered_without_force(deployment: Deployment, cli: CliRun) -> None:
    code, _, err = cli("start", deployment.tasks[1])
    assert code == 1
    assert "is RUNNING: a recovery stops every task of its job; pass --force" in err
    assert executions(deployment) == []


def test_execution_names_follow_step_functions_rules() -> None:
    arn = "arn:aws:ecs:us-east-1:123456789012:task/gpu-cluster/" + "a" * 32
    names = {new_execution_name(arn, dry_run=True) for _ in range(20)}
    assert len(names) == 20
    assert all(len(n) <= 80 and re.fullmatch(r"[A-Za-z0-9_-]+", n) for n in names)


def test_malformed_arn_is_a_usage_error(deployment: Deployment, cli: CliRun) -> None:
    code, _out, err = cli("start", "not-an-arn")
    assert code == 2
    assert "is not an ECS task ARN" in err
    assert executions(deployment) == []


def test_unknown_task_fails_and_starts_nothing(deployment: Deployment, cli: CliRun) -> None:
    missing = deployment.tasks[0][:-32] + "0" * 32
    code, _, err = cli("start", missing)
    assert code == 1
    assert f"task {missing} not found in cluster gpu-cluster" in err
    assert executions(deployment) == []


def test_task_of_another_cluster_is_a_usage_error(deployment: Deployment, cli: CliRun) -> None:
    other = deployment.tasks[0].replace("/gpu-cluster/", "/other-cluster/")
    code, _, err = cli("start", other)
    assert code == 2
    assert "belongs to cluster 'other-cluster'" in err
    assert executions(deployment) == []


def test_missing_stack_is_a_usage_error(deployment: Deployment, cli: CliRun) -> None:
    code, _, err = cli("start", deployment.tasks[0], "--stack-name", "NoSuchStack")
    assert code == 2
    assert "cannot read stack 'NoSuchStack'" in err
    assert executions(deployment) == []


def test_missing_stack_output_names_the_flag(deployment: Deployment, cli: CliRun) -> None:
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Outputs": {"Other": {"Value": "x"}}}
    boto3.client("cloudformation").create_stack(StackName="Partial", TemplateBody=json.dumps(template))
    code, _, err = cli("start", deployment.tasks[0], "--stack-name", "Partial")
    assert code == 2
    assert "has no output StateMachineArn; give --state-machine-arn or set GPU_RECOVERY_STATE_MACHINE_ARN" in err


def test_flags_and_environment_override_the_stack(
    deployment: Deployment, cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPU_RECOVERY_STATE_MACHINE_ARN", deployment.state_machine_arn)
    monkeypatch.setenv("GPU_RECOVERY_CLUSTER", deployment.cluster_arn)
    code, _, err = cli("start", deployment.tasks[0], "--stack-name", "NoSuchStack", "--force")
    assert (code, err) == (0, "")


def test_help_documents_exit_codes(cli: CliRun) -> None:
    code, out, _ = cli("start", "--help")
    assert code == 0
    assert "Exit codes" in out
    assert "--dry-run" in out
    assert "--wait" in out


def test_aws_endpoint_url_is_honoured_by_boto3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:4566")
    assert boto3.client("stepfunctions").meta.endpoint_url == "http://localhost:4566"
    assert boto3.resource("dynamodb").meta.client.meta.endpoint_url == "http://localhost:4566"
