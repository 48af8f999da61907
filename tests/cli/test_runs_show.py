"""`gpu-recovery runs` and `show` against moto: filters, and the error paths (the happy paths with a real
history are in test_against_local_engine.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import boto3
import pytest
from cli_helpers import CliRun, Deployment
from moto import mock_aws

from gpu_recovery.cli_arguments import parse_duration
from gpu_recovery.commands.show import sections
from gpu_recovery.executions import summarize
from gpu_recovery.history import Failure, History, Visit


def start(deployment: Deployment, name: str, task_arn: str) -> str:
    sfn = boto3.client("stepfunctions")
    body = json.dumps({"taskArn": task_arn, "reason": "r", "dryRun": False})
    return str(sfn.start_execution(stateMachineArn=deployment.state_machine_arn, name=name, input=body)["executionArn"])


def test_runs_filters_by_status_and_reads_the_job_from_the_task_table(deployment: Deployment, cli: CliRun) -> None:
    running = start(deployment, "one", deployment.tasks[0])
    stopped = start(deployment, "two", deployment.tasks[1])
    boto3.client("stepfunctions").stop_execution(executionArn=stopped)
    boto3.resource("dynamodb").Table(deployment.config.TASK_TABLE_NAME).put_item(
        Item={"taskArn": deployment.tasks[0], "jobId": "job-a", "ec2InstanceId": deployment.instance_ids[0],
              "recoveryExecution": running}
    )  # fmt: skip
    code, out, _ = cli("runs")
    assert code == 0
    assert out.splitlines()[0].split() == ["START", "STATUS", "JOB", "NODES", "OUTCOME", "DURATION", "EXECUTION"]
    code, out, _ = cli("runs", "--status", "running", "--json")
    [row] = json.loads(out)
    assert row["name"] == "one"
    assert row["job"] == "job-a"
    assert row["nodes"] == [deployment.instance_ids[0]]
    code, out, _ = cli("runs", "--job", "job-a", "--json")
    assert [r["name"] for r in json.loads(out)] == ["one"]
    code, out, _ = cli("runs", "--since", "1h", "--json")
    assert {r["name"] for r in json.loads(out)} == {"one", "two"}


def test_runs_usage_errors(deployment: Deployment, cli: CliRun) -> None:
    assert cli("runs", "--since", "yesterday")[0] == 2
    assert cli("runs", "--status", "DONE")[0] == 2


def test_durations() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("7d") == timedelta(days=7)
    with pytest.raises(Exception, match="not a duration"):
        parse_duration("5 minutes")


def test_show_unknown_execution(deployment: Deployment, cli: CliRun) -> None:
    code, _, err = cli("show", "no-such-run")
    assert code == 1
    assert (
        "no execution arn:aws:states:us-east-1:123456789012:execution:EcsGpuRecoveryStack-recovery:no-such-run" in err
    )


def test_show_rejects_a_non_execution_arn(deployment: Deployment, cli: CliRun) -> None:
    code, _, err = cli("show", deployment.state_machine_arn)
    assert code == 2
    assert "not an execution ARN" in err


def test_show_by_arn_of_a_running_execution(deployment: Deployment, cli: CliRun) -> None:
    arn = start(deployment, "live", deployment.tasks[0])
    code, out, _ = cli("show", arn)
    assert code == 0
    assert "Status     RUNNING" in out
    assert "Path" in out


def test_no_stack(cli: CliRun) -> None:
    with mock_aws():
        code, _, err = cli("runs")
    assert code == 2
    assert "cannot read stack 'EcsGpuRecoveryStack'" in err


def test_runs_hides_ignored_and_duplicate_executions_unless_asked(deployment: Deployment, cli: CliRun) -> None:
    for name in ("recovery", "ignored", "duplicate"):
        start(deployment, name, deployment.tasks[0])
    decisions = {"ignored": "IGNORE", "duplicate": "DUPLICATE"}

    def summaries(context: object, executions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = []
        for execution in executions:
            output = {"decision": decisions.get(execution["name"], "RECOVER"), "reason": "why"}
            described = execution | {"status": "SUCCEEDED", "output": json.dumps(output)}
            rows.append(summarize(described))
        return rows

    with mock.patch("gpu_recovery.commands.runs.summaries", summaries):
        code, out, _ = cli("runs")
        assert code == 0
        assert [line.split()[-1] for line in out.splitlines()[1:-1]] == ["recovery"]
        assert out.splitlines()[-1] == "(2 ignored or duplicate not shown: --all)"
        _, out, _ = cli("runs", "--all", "--json")
        assert {r["name"] for r in json.loads(out)} == {"recovery", "ignored", "duplicate"}


def test_show_separates_real_errors_from_what_the_workflow_handled() -> None:
    start_at = datetime(2026, 1, 1, tzinfo=UTC)

    def at(seconds: int) -> datetime:
        return start_at + timedelta(seconds=seconds)

    lambda_cause = json.dumps({"errorType": "LookupError", "errorMessage": "no cluster", "stackTrace": ["x"] * 50})
    walked = History(
        visits=[
            Visit("RunDcgmDiag", "Task", (), at(0), at(10)),
            Visit("AnalyzeDiag", "Task", (), at(11), at(12)),
            Visit("RestartJob", "Task", (), at(13), at(14)),
            Visit("HandleError", "Task", (), at(15), at(16)),
        ],
        failures=[
            Failure(
                "RunDcgmDiag", (), at(10), "States.TaskFailed", json.dumps({"StopCode": "X", "TaskArn": "t"}), True
            ),
            Failure("RestartJob", (), at(14), "LookupError", lambda_cause, True),
        ],
        started=start_at,
    )
    text = "\n".join(sections(walked, {}, 300))
    errors = text.split("\nErrors\n")[1].split("\n\n")[0]
    assert errors.strip() == "+14s  RestartJob: LookupError: no cluster"
    handled = text.split("caught or retried, not errors)\n")[1]
    assert handled.strip() == "+10s  RunDcgmDiag: States.TaskFailed: ECS task stopped: X -> AnalyzeDiag"
