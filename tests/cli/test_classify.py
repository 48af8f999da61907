"""`gpu-recovery classify`: ClassifyFailure's own parsing and decision, starting and writing nothing."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from cli_helpers import CliRun, Deployment

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures"


def event_file(tmp_path: Path, deployment: Deployment, fixture: str, **detail: object) -> str:
    event = json.loads((FIXTURES / f"{fixture}.json").read_text())
    if event["detail"]["clusterArn"].endswith("/gpu-training"):
        event["detail"]["clusterArn"] = deployment.cluster_arn
        event["detail"]["taskArn"] = event["detail"]["taskArn"].replace("/gpu-training/", "/gpu-cluster/")
    event["detail"] |= detail
    path = tmp_path / f"{fixture}.json"
    path.write_text(json.dumps(event))
    return str(path)


def nothing_written_or_started(deployment: Deployment) -> None:
    sfn = boto3.client("stepfunctions")
    assert sfn.list_executions(stateMachineArn=deployment.state_machine_arn)["executions"] == []
    assert boto3.resource("dynamodb").Table(deployment.config.TASK_TABLE_NAME).scan()["Items"] == []


def test_recover_names_the_job(tmp_path: Path, deployment: Deployment, cli: CliRun) -> None:
    code, out, _ = cli("classify", event_file(tmp_path, deployment, "task_stopped_gpu"))
    assert code == 0
    assert out.splitlines()[0] == "Decision  RECOVER"
    assert "Job       " in out
    assert "JOB_KEY=group" in out
    assert "Nothing was started." in out
    nothing_written_or_started(deployment)


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("task_stopped_user_initiated", "STOP_CODE_NOT_GPU"),
        ("task_stopped_no_gpu", "NOT_A_GPU_TASK"),
        ("task_stopped_own_dcgm_check", "OWN_DCGM_TASK"),
        ("task_stopped_other_cluster", "NOT_IN_CLUSTER"),
    ],
)
def test_ignore_says_why(tmp_path: Path, deployment: Deployment, cli: CliRun, fixture: str, reason: str) -> None:
    code, out, _ = cli("classify", event_file(tmp_path, deployment, fixture), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["decision"] == "IGNORE"
    assert result["reason"].startswith(reason)
    assert result["started"] is False
    nothing_written_or_started(deployment)


def test_duplicate_against_the_task_table(tmp_path: Path, deployment: Deployment, cli: CliRun) -> None:
    path = event_file(tmp_path, deployment, "task_stopped_gpu")
    detail = json.loads(Path(path).read_text())["detail"]
    table = boto3.resource("dynamodb").Table(deployment.config.TASK_TABLE_NAME)
    table.put_item(Item={"taskArn": detail["taskArn"], "jobId": "j", "lastEventVersion": detail["version"]})
    code, out, _ = cli("classify", path, "--json")
    assert code == 0
    assert json.loads(out)["decision"] == "DUPLICATE"
    code, out, _ = cli("classify", path, "--json", "--no-history")
    assert code == 0
    assert json.loads(out)["decision"] == "RECOVER"


def test_manual_request_for_a_live_task(tmp_path: Path, deployment: Deployment, cli: CliRun) -> None:
    path = tmp_path / "manual.json"
    path.write_text(json.dumps({"taskArn": deployment.tasks[0], "reason": "check it"}))
    code, out, _ = cli("classify", str(path), "--json")
    result = json.loads(out)
    # moto's tasks carry no gpuIds: the same check the step makes ignores it, even by hand.
    assert code == 0
    assert result["source"] == "manual"
    assert result["reason"].startswith("NOT_A_GPU_TASK")


def test_invalid_input_is_what_the_workflow_would_reject(tmp_path: Path, deployment: Deployment, cli: CliRun) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"taskArn": "nope"}))
    code, out, _ = cli("classify", str(path))
    assert code == 1
    assert "INVALID INPUT" in out
    assert "is not an ECS task ARN" in out


def test_unreadable_file_is_a_usage_error(tmp_path: Path, deployment: Deployment, cli: CliRun) -> None:
    code, _, err = cli("classify", str(tmp_path / "missing.json"))
    assert code == 2
    assert "cannot read" in err
    (tmp_path / "junk.json").write_text("{not json")
    code, _, err = cli("classify", str(tmp_path / "junk.json"))
    assert code == 2
    assert "is not JSON" in err
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe{}")
    code, _, err = cli("classify", str(tmp_path / "binary.json"))
    assert code == 2
    binary = tmp_path / "binary.json"
    assert err.strip() == f"gpu-recovery classify: {binary} is not UTF-8 text (byte 0: invalid start byte)"
