"""RebootInstances and TerminateInstances: agent disconnects for reboot_seconds, faults clear or persist."""

from __future__ import annotations

import boto3
import pytest
from fleet_helpers import CLUSTER, describe, instance, run_check

from gpu_recovery.sim import FaultSpec, JobSpec, NodeSpec, Timings

TIMINGS = Timings(diag_seconds=100, reboot_seconds=240)


def reboot(fleet, node="n1"):
    boto3.client("ec2", region_name="us-east-1").reboot_instances(InstanceIds=[fleet.instance_id(node)])


def check_exit(ecs, fleet, clock):
    """Run one check and return its exit code once diag_seconds have passed."""
    arn = run_check(ecs, fleet, "n1")["tasks"][0]["taskArn"]
    clock.advance_to(clock.elapsed() + TIMINGS.diag_seconds)
    return describe(ecs, arn)["containers"][0]["exitCode"]


def test_reboot_disconnects_the_agent_for_reboot_seconds(make_fleet, ecs, clock):
    fleet = make_fleet(jobs=[], timings=TIMINGS)
    clock.advance_to(50)
    reboot(fleet)
    assert instance(ecs, fleet, "n1")["agentConnected"] is False
    clock.advance_to(50 + 239)
    assert instance(ecs, fleet, "n1")["agentConnected"] is False
    clock.advance_to(50 + 240)
    assert instance(ecs, fleet, "n1")["agentConnected"] is True
    assert fleet.actions()["reboots"] == {"n1": 1}
    assert [a for _, a, _, _ in fleet.timeline()] == ["reboot", "agent_connected"]


def test_reboot_keeps_draining_status_and_stops_running_tasks(make_fleet, ecs, clock):
    fleet = make_fleet(timings=TIMINGS)
    job_task = fleet.job_tasks("job-a")[0]
    ecs.update_container_instances_state(
        cluster=CLUSTER, containerInstances=[fleet.container_instance_arn("n1")], status="DRAINING"
    )
    reboot(fleet)
    clock.advance_to(240)
    ci = instance(ecs, fleet, "n1")
    assert ci["status"] == "DRAINING"
    assert ci["agentConnected"] is True
    assert ci["runningTasksCount"] == 0
    assert describe(ecs, job_task)["lastStatus"] == "STOPPED"
    assert fleet.job_tasks("job-a") == []


@pytest.mark.parametrize(("persistence", "exit_after"), [("transient", 0), ("persistent", 226)])
def test_reboot_clears_transient_faults_only(make_fleet, ecs, clock, persistence, exit_after):
    fleet = make_fleet([NodeSpec("n1", fault=FaultSpec("xid79", persistence))], [], timings=TIMINGS)
    assert check_exit(ecs, fleet, clock) == 226
    reboot(fleet)
    clock.advance_to(clock.elapsed() + TIMINGS.reboot_seconds)
    assert check_exit(ecs, fleet, clock) == exit_after


def test_flapping_fault_comes_back_after_healthy_checks(make_fleet, ecs, clock):
    fault = FaultSpec("xid74", "flapping", flap_after_checks=2)
    fleet = make_fleet([NodeSpec("n1", fault=fault)], [], timings=TIMINGS)
    reboot(fleet)
    clock.advance_to(TIMINGS.reboot_seconds)
    assert [check_exit(ecs, fleet, clock) for _ in range(3)] == [0, 0, 226]
    reboot(fleet)
    clock.advance_to(clock.elapsed() + TIMINGS.reboot_seconds)
    assert check_exit(ecs, fleet, clock) == 0


def test_flapping_fault_comes_back_after_seconds(make_fleet, ecs, clock):
    fault = FaultSpec("xid119", "flapping", flap_after_checks=99, flap_after_seconds=1000)
    fleet = make_fleet([NodeSpec("n1", fault=fault)], [], timings=TIMINGS)
    reboot(fleet)
    clock.advance_to(TIMINGS.reboot_seconds)
    assert check_exit(ecs, fleet, clock) == 0
    clock.advance_to(1000)
    assert check_exit(ecs, fleet, clock) == 226


def test_never_returns_keeps_the_agent_away(make_fleet, ecs, clock):
    fleet = make_fleet([NodeSpec("n1", fault=FaultSpec("never_returns"))], [], timings=TIMINGS)
    assert check_exit(ecs, fleet, clock) == 226
    reboot(fleet)
    clock.advance_to(100_000)
    assert instance(ecs, fleet, "n1")["agentConnected"] is False
    assert run_check(ecs, fleet, "n1")["failures"][0]["reason"] == "AGENT"


def test_terminate_deregisters_and_stops_tasks(make_fleet, ecs):
    fleet = make_fleet(jobs=[JobSpec("job-a", ["n1"])])
    job_task = fleet.job_tasks("job-a")[0]
    boto3.client("ec2", region_name="us-east-1").terminate_instances(InstanceIds=[fleet.instance_id("n1")])
    ci = instance(ecs, fleet, "n1")
    assert ci["status"] == "INACTIVE"
    assert ci["agentConnected"] is False
    task = describe(ecs, job_task)
    assert task["stopCode"] == "TerminationNotice"
    assert task["stoppedReason"] == f"Host EC2 (instance {fleet.instance_id('n1')}) terminated."
    assert fleet.actions()["terminations"] == {"n1": 1}
