"""Task state change events in the EventBridge shape, and the actions log."""

from __future__ import annotations

import boto3
from fleet_helpers import CLUSTER, describe, run_check, stop_job

from gpu_recovery.sim import JobSpec, NodeSpec, Timings

DETAIL_KEYS = {
    "attachments", "attributes", "availabilityZone", "clusterArn", "connectivity", "containerInstanceArn",
    "containers", "cpu", "createdAt", "desiredStatus", "group", "launchType", "lastStatus", "memory", "overrides",
    "startedAt", "startedBy", "stopCode", "stoppedAt", "stoppedReason", "stoppingAt", "taskArn",
    "taskDefinitionArn", "updatedAt", "version",
}  # fmt: skip
CONTAINER_KEYS = {"containerArn", "exitCode", "lastStatus", "name", "runtimeId", "taskArn", "networkInterfaces",
                  "cpu", "memory", "gpuIds"}  # fmt: skip


def test_fail_task_returns_the_ecs_task_state_change_event(make_fleet, ecs, clock):
    fleet = make_fleet([NodeSpec("n1")], [JobSpec("job-a", ["n1"], tasks_per_node=2)])
    arn = fleet.job_tasks("job-a")[0]
    clock.advance_to(30)
    event = fleet.fail_task(arn, exit_code=139, reason="Segmentation fault")
    assert {k: event[k] for k in ("version", "detail-type", "source", "region", "resources")} == {
        "version": "0",
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "region": "us-east-1",
        "resources": [arn],
    }
    assert event["account"] == "123456789012"
    assert event["time"] == "2026-01-01T00:00:30Z"
    detail = event["detail"]
    assert detail.keys() >= DETAIL_KEYS
    assert detail["lastStatus"] == detail["desiredStatus"] == "STOPPED"
    assert detail["stopCode"] == "EssentialContainerExited"
    assert detail["launchType"] == "EC2"
    assert detail["group"] == "job-a"
    assert detail["stoppedAt"] == "2026-01-01T00:00:30.000Z"
    assert detail["version"] == 2
    container = detail["containers"][0]
    assert container.keys() >= CONTAINER_KEYS
    assert (container["exitCode"], container["reason"], len(container["gpuIds"])) == (139, "Segmentation fault", 4)
    # describe_tasks agrees with the event, and the task is no longer part of the running job
    task = describe(ecs, arn)
    assert task["containers"][0]["exitCode"] == 139
    assert task["version"] == 2
    assert len(fleet.job_tasks("job-a")) == 1
    assert arn not in fleet.job_tasks("job-a")
    assert fleet.drain_events() == []  # the caller owns the failure event


def test_drain_events_reports_our_own_stops_and_checks(make_fleet, ecs, clock):
    fleet = make_fleet(timings=Timings(diag_seconds=60))
    stop_job(ecs, fleet, "job-a")
    check = run_check(ecs, fleet, "n1")["tasks"][0]["taskArn"]
    clock.advance_to(60)
    events = fleet.drain_events()
    summary = [
        (e["detail"]["startedBy"], e["detail"]["lastStatus"], e["detail"].get("stopCode"), e["detail"]["version"])
        for e in events
    ]
    assert summary == [
        ("gpu-scheduler", "STOPPED", "UserInitiated", 2),
        ("AWS Step Functions", "RUNNING", None, 1),
        ("AWS Step Functions", "STOPPED", "EssentialContainerExited", 2),
    ]
    assert events[-1]["resources"] == [check]
    assert fleet.drain_events() == []


def test_actions_count_what_was_done_to_the_fleet(make_fleet, ecs, clock):
    fleet = make_fleet([NodeSpec("n1"), NodeSpec("n2")], [JobSpec("job-a", ["n1", "n2"])], timings=Timings())
    assert fleet.actions() == {
        "dcgm_checks": {}, "drains": {}, "reboots": {}, "terminations": {}, "tasks_stopped": {}, "tasks_started": {},
    }  # fmt: skip
    td = describe(ecs, fleet.job_tasks("job-a")[0])["taskDefinitionArn"]
    stop_job(ecs, fleet, "job-a")
    run_check(ecs, fleet, "n1")
    run_check(ecs, fleet, "n2")
    ecs.update_container_instances_state(
        cluster=CLUSTER, containerInstances=[fleet.container_instance_arn("n2")], status="DRAINING"
    )
    boto3.client("ec2", region_name="us-east-1").reboot_instances(InstanceIds=[fleet.instance_id("n2")])
    clock.advance_to(1000)
    ecs.run_task(cluster=CLUSTER, taskDefinition=td, group="job-a")
    assert fleet.actions() == {
        "dcgm_checks": {"n1": 1, "n2": 1},
        "drains": {"n2": 1},
        "reboots": {"n2": 1},
        "terminations": {},
        "tasks_stopped": {"job-a": 2},
        "tasks_started": {"job-a": 1},
    }
    times = [t for t, _, _, _ in fleet.timeline()]
    assert times == sorted(times)
