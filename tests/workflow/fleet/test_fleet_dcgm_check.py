"""The DCGM check task: runs diag_seconds of simulated time, exits per the node's fault, logs its envelope."""

from __future__ import annotations

import pytest
from fleet_helpers import CLUSTER, check_log, describe, run_check

from gpu_recovery.sim import FaultSpec, NodeSpec, Timings, parse_envelope


def start_check(make_fleet, ecs, fault=None, timings=None):
    fleet = make_fleet([NodeSpec("n1", fault=fault)], [], timings=timings or Timings(diag_seconds=120))
    return fleet, run_check(ecs, fleet, "n1")["tasks"][0]["taskArn"]


def test_healthy_check_stops_with_exit_0_only_after_diag_seconds(make_fleet, ecs, clock):
    fleet, arn = start_check(make_fleet, ecs)
    clock.advance_to(119.9)
    assert describe(ecs, arn)["lastStatus"] == "RUNNING"
    assert parse_envelope(check_log(fleet, arn)) is None  # started, no result yet
    clock.advance_to(120)
    task = describe(ecs, arn)
    assert task["lastStatus"] == "STOPPED"
    assert task["stopCode"] == "EssentialContainerExited"
    assert task["stoppedReason"] == "Essential container in task exited"
    assert task["containers"][0]["exitCode"] == 0
    assert (task["stoppedAt"] - task["startedAt"]).total_seconds() == 120
    envelope = parse_envelope(check_log(fleet, arn))
    assert envelope is not None
    assert envelope["version"] == 2
    assert envelope["dcgmiExitCode"] == 0
    assert envelope["xids"] == []
    assert len(envelope["gpus"]) == 8
    tests = [t for c in envelope["dcgmi"]["DCGM Diagnostic"]["test_categories"] for t in c["tests"]]
    assert {t["name"] for t in tests} == {"software", "pcie", "memory"}  # level 2
    assert all(r["status"] == "Pass" for t in tests for r in t["results"])


@pytest.mark.parametrize(
    ("kind", "exit_code", "xid"),
    [("xid79", 226, 79), ("xid74", 226, 74), ("xid119", 226, 119), ("xid95", 226, 95), ("xid48", 205, 48)],
)
def test_faulty_node_exits_non_zero_with_the_xids(make_fleet, ecs, clock, kind, exit_code, xid):  # noqa: PLR0917
    fleet, arn = start_check(make_fleet, ecs, FaultSpec(kind, gpus=[2, 5]))
    clock.advance_to(120)
    assert describe(ecs, arn)["containers"][0]["exitCode"] == exit_code
    envelope = parse_envelope(check_log(fleet, arn))
    assert envelope["dcgmiExitCode"] == exit_code
    assert [(x["xid"], x["gpuIndex"]) for x in envelope["xids"]] == [(xid, 2), (xid, 5)]
    assert f"Xid (PCI:0000:{envelope['gpus'][2]['pciBusId'][9:11].lower()}" in envelope["xids"][0]["line"]
    failed = [
        (r["entity_id"], r["warnings"][0]["error_id"])
        for c in envelope["dcgmi"]["DCGM Diagnostic"]["test_categories"]
        for t in c["tests"]
        for r in t["results"]
        if r["status"] == "Fail"
    ]
    assert [gpu for gpu, _ in failed] == [2, 5]


def test_isolate_exits_205_with_isolate_severity(make_fleet, ecs, clock):
    fleet, arn = start_check(make_fleet, ecs, FaultSpec("isolate"))
    clock.advance_to(120)
    assert describe(ecs, arn)["containers"][0]["exitCode"] == 205
    envelope = parse_envelope(check_log(fleet, arn))
    warnings = [
        w
        for c in envelope["dcgmi"]["DCGM Diagnostic"]["test_categories"]
        for t in c["tests"]
        for r in t["results"]
        for w in r.get("warnings", [])
    ]
    assert [w["error_severity"] for w in warnings] == [2]  # DCGM_ERROR_ISOLATE


def test_app_crash_passes_dcgm_but_logs_the_application_xid(make_fleet, ecs, clock):
    fleet, arn = start_check(make_fleet, ecs, FaultSpec("app_crash"))
    clock.advance_to(120)
    assert describe(ecs, arn)["containers"][0]["exitCode"] == 0
    assert [x["xid"] for x in parse_envelope(check_log(fleet, arn))["xids"]] == [13]


def test_hanging_check_stops_only_on_stop_task(make_fleet, ecs, clock):
    fleet, arn = start_check(make_fleet, ecs, FaultSpec("check_hangs"))
    clock.advance_to(10_000)
    assert describe(ecs, arn)["lastStatus"] == "RUNNING"
    ecs.stop_task(cluster=CLUSTER, task=arn, reason="States.Timeout")
    # dcgmi ignores SIGTERM: it keeps the GPUs until ECS SIGKILLs it, the default stopTimeout (30 s) later.
    task = describe(ecs, arn)
    assert (task["lastStatus"], task["desiredStatus"]) == ("RUNNING", "STOPPED")
    assert run_check(ecs, fleet, "n1")["failures"][0]["reason"] == "RESOURCE:GPU"
    clock.advance_to(10_030)
    task = describe(ecs, arn)
    assert task["lastStatus"] == "STOPPED"
    assert task["stopCode"] == "UserInitiated"
    assert task["stoppedReason"] == "States.Timeout"
    assert task["containers"][0]["exitCode"] == 137
    assert parse_envelope(check_log(fleet, arn)) is None


def test_check_frees_the_gpus_when_it_stops(make_fleet, ecs, clock):
    fleet, _arn = start_check(make_fleet, ecs)
    assert run_check(ecs, fleet, "n1")["failures"][0]["reason"] == "RESOURCE:GPU"
    clock.advance_to(120)
    assert run_check(ecs, fleet, "n1")["failures"] == []
    assert fleet.actions()["dcgm_checks"] == {"n1": 2}


def test_list_tasks_shows_running_tasks_unless_asked_for_stopped(make_fleet, ecs, clock):
    _, arn = start_check(make_fleet, ecs)
    assert ecs.list_tasks(cluster=CLUSTER)["taskArns"] == [arn]
    clock.advance_to(120)
    assert ecs.list_tasks(cluster=CLUSTER)["taskArns"] == []
    assert ecs.list_tasks(cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"] == [arn]
