"""Every custom metric the dashboard shows (infra/monitoring.py) is emitted by the step code path it counts,
under the namespace and `service` dimension the dashboard and the alarms read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import acquire_node
import analyze_diag
import handle_error
import pytest
import record_node_state
import restart_job
from test_handler_job import job_request, recovering
from test_handler_node import FAILING_DCGMI, analysis, check_result, put_log, step
from unit_helpers import ENV, OTHER_EXECUTION_ARN, FakeLambdaContext, Fleet, execution

from infra.monitoring import CUSTOM_METRICS
from recovery.aws import Ecs
from recovery.models import NodeStep
from recovery.observability import count_by, metrics
from recovery.settings import get_settings
from recovery.tables import Tables

TESTED = {
    "RecoveryStarted",
    "JobRestarted",
    "JobFailed",
    "RecoveryError",
    "TimeToRecovery",
    "NodeRebooted",
    "NodeGpuReset",
    "NodeQuarantined",
    "FleetBreakerOpen",
    "NodeVerdict",
    "StaleLock",
}


def emitted(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    """The EMF documents the handlers printed, by metric name."""
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    found = {}
    for document in documents:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == ENV["POWERTOOLS_METRICS_NAMESPACE"]
        assert document["service"] == ENV["POWERTOOLS_SERVICE_NAME"]
        found |= {
            m["Name"]: document | {"Unit": m["Unit"], "Dimensions": directive["Dimensions"]}
            for m in directive["Metrics"]
        }
    return found


def test_every_dashboard_metric_is_tested_here() -> None:
    assert set(CUSTOM_METRICS) == TESTED


def test_recovery_started_restarted_and_time_to_recovery(
    fleet: Fleet, context: FakeLambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    classified = recovering(fleet, context)
    restart_job.handler(job_request(classified, ["REPAIRED", "HEALTHY"]), context)
    found = emitted(capsys)
    assert {"RecoveryStarted", "JobRestarted", "TimeToRecovery"} <= found.keys()
    stopped = datetime.fromisoformat(classified["failure"]["stoppedAt"])
    assert found["TimeToRecovery"]["Unit"] == "Seconds"
    assert 0 < found["TimeToRecovery"]["TimeToRecovery"][0] <= (datetime.now(UTC) - stopped).total_seconds()
    assert found["JobRestarted"]["Dimensions"] == [["service"]]


def test_job_failed(fleet: Fleet, context: FakeLambdaContext, capsys: pytest.CaptureFixture[str]) -> None:
    classified = recovering(fleet, context)
    restart_job.handler(job_request(classified, ["HEALTHY", "HEALTHY"]), context)
    found = emitted(capsys)
    assert "JobFailed" in found
    assert "TimeToRecovery" not in found


def test_recovery_error(aws: None, context: FakeLambdaContext, capsys: pytest.CaptureFixture[str]) -> None:
    state = {"taskArn": "x", "error": {"Error": "Lambda.Unknown", "Cause": "timeout"}}
    handle_error.handler({"state": state, "execution": execution()}, context)
    assert "RecoveryError" in emitted(capsys)


def test_node_rebooted_reset_and_quarantined(
    aws: None, context: FakeLambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    acquire_node.handler(step(), context)
    record_node_state.handler(step(action="REBOOTING", analysis=analysis("REBOOT")), context)
    record_node_state.handler(step(action="RESETTING_GPU", analysis=analysis("RESET_GPU")), context)
    record_node_state.handler(step(action="QUARANTINE", analysis=analysis("QUARANTINE")), context)
    assert {"NodeRebooted", "NodeGpuReset", "NodeQuarantined"} <= emitted(capsys).keys()


def test_verdicts_are_counted_by_action(
    fleet: Fleet, context: FakeLambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    node = fleet.instance_ids[0]
    acquire_node.handler(step(node=node), context)
    check = check_result(fleet, 1)
    put_log(check["task"]["TaskArn"], ["GPU_RECOVERY_RESULT " + json.dumps({"dcgmi": FAILING_DCGMI})])
    analyze_diag.handler(step(node=node, check=check, rebootsInWindow=0), context)
    verdict = emitted(capsys)["NodeVerdict"]
    assert verdict["Action"] == "REBOOT"
    assert verdict["Dimensions"] == [["service", "Action"]]


def test_fleet_breaker_open(fleet: Fleet) -> None:
    settings = get_settings()
    tables = Tables.from_settings(settings)
    ecs = Ecs(settings.ECS_CLUSTER_NAME)
    now = datetime.now(UTC)
    holder, node = fleet.instance_ids[:2]
    analyze_diag.claim_repair_slot(
        NodeStep.REBOOT, "r", holder, me="other", now=now, settings=settings, ecs=ecs, tables=tables
    )
    metrics.clear_metrics()
    step_taken, _ = analyze_diag.claim_repair_slot(
        NodeStep.REBOOT, "r", node, me="me", now=now, settings=settings, ecs=ecs, tables=tables
    )
    assert step_taken == NodeStep.HOLD  # the breaker holds the node for a human, never quarantines it
    assert "FleetBreakerOpen" in metrics.metric_set
    metrics.clear_metrics()


def test_nothing_is_printed_when_metrics_are_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The simulator turns metrics off; its --json output must stay one JSON document.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    count_by("NodeVerdict", "Action", "REBOOT")
    assert capsys.readouterr().out == ""


def test_a_lock_that_outlived_its_owner_is_counted(
    aws: None, context: FakeLambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    acquire_node.handler(step(), context)
    assert "StaleLock" not in emitted(capsys)
    # The lock's owner does not exist in Step Functions (it ended long ago): the lock outlived its lease.
    acquire_node.handler(step(OTHER_EXECUTION_ARN), context)
    assert emitted(capsys)["StaleLock"]["StaleLock"] == [1.0]
