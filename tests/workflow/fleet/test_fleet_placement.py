"""RunTask placement on the simulated fleet: memberOf, status, agent and GPU availability, like AWS."""

from __future__ import annotations

import boto3
from fleet_helpers import CLUSTER, describe, instance, member_of, run_check, stop_job

from gpu_recovery.sim import FaultSpec, JobSpec, NodeSpec
from recovery.relaunch import NOT_UNDER_REPAIR, UNDER_REPAIR_ATTRIBUTE


def test_initial_jobs_run_on_their_nodes_with_disjoint_gpus(make_fleet, ecs):
    fleet = make_fleet([NodeSpec("n1"), NodeSpec("n2")], [JobSpec("job-a", ["n1", "n2"], tasks_per_node=2)])
    tasks = [describe(ecs, arn) for arn in fleet.job_tasks("job-a")]
    assert len(tasks) == 4
    by_node: dict[str, list[str]] = {}
    for task in tasks:
        assert task["group"] == "job-a"
        assert task["lastStatus"] == "RUNNING"
        assert "exitCode" not in task["containers"][0]
        ci = next(n for n in ("n1", "n2") if fleet.container_instance_arn(n) == task["containerInstanceArn"])
        by_node.setdefault(ci, []).extend(task["containers"][0]["gpuIds"])
    for gpu_ids in by_node.values():
        assert len(gpu_ids) == 8
        assert len(set(gpu_ids)) == 8
    n1 = instance(ecs, fleet, "n1")
    assert n1["runningTasksCount"] == 2
    gpu = next(r for r in n1["remainingResources"] if r["name"] == "GPU")
    assert gpu["stringSetValue"] == []
    registered = next(r for r in n1["registeredResources"] if r["name"] == "GPU")
    assert len(registered["stringSetValue"]) == 8


def test_member_of_pins_the_task_to_the_instance(make_fleet, ecs):
    fleet = make_fleet([NodeSpec("n1"), NodeSpec("n2")], [])
    response = run_check(ecs, fleet, "n2")
    assert response["failures"] == []
    assert response["tasks"][0]["containerInstanceArn"] == fleet.container_instance_arn("n2")
    assert response["tasks"][0]["startedBy"] == "AWS Step Functions"


def test_busy_gpus_fail_with_resource_gpu(make_fleet, ecs):
    fleet = make_fleet()  # job-a holds all 8 GPUs of n1
    response = run_check(ecs, fleet, "n1")
    assert response["tasks"] == []
    assert response["failures"] == [{"arn": fleet.container_instance_arn("n1"), "reason": "RESOURCE:GPU"}]
    stop_job(ecs, fleet, "job-a")
    assert run_check(ecs, fleet, "n1")["failures"] == []


def test_draining_instance_is_not_a_candidate(make_fleet, ecs):
    fleet = make_fleet(jobs=[])
    ecs.update_container_instances_state(
        cluster=CLUSTER, containerInstances=[fleet.container_instance_arn("n1")], status="DRAINING"
    )
    response = run_check(ecs, fleet, "n1")
    assert response["tasks"] == []
    assert response["failures"] == [{"reason": "MemberOf placement constraint unsatisfied."}]
    assert instance(ecs, fleet, "n1")["status"] == "DRAINING"
    assert fleet.actions()["drains"] == {"n1": 1}


def test_disconnected_agent_fails_with_agent(make_fleet, ecs):
    fleet = make_fleet(jobs=[])
    boto3.client("ec2", region_name="us-east-1").reboot_instances(InstanceIds=[fleet.instance_id("n1")])
    response = run_check(ecs, fleet, "n1")
    assert response["failures"] == [{"arn": fleet.container_instance_arn("n1"), "reason": "AGENT"}]


def test_unplaceable_fault_refuses_the_check_only(make_fleet, ecs):
    fleet = make_fleet([NodeSpec("n1", fault=FaultSpec("unplaceable"))], [])
    assert run_check(ecs, fleet, "n1")["failures"][0]["reason"] == "RESOURCE:GPU"
    job_td = ecs.register_task_definition(
        family="small",
        containerDefinitions=[
            {"name": "c", "image": "x", "memory": 512, "resourceRequirements": [{"type": "GPU", "value": "1"}]}
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    placed = ecs.run_task(
        cluster=CLUSTER, taskDefinition=job_td, group="job-b", placementConstraints=member_of(fleet, "n1")
    )
    assert placed["failures"] == []


def test_restarted_job_lands_on_an_active_node_with_free_gpus(make_fleet, ecs):
    fleet = make_fleet([NodeSpec("n1"), NodeSpec("n2")], [JobSpec("job-a", ["n1"])])
    td = describe(ecs, fleet.job_tasks("job-a")[0])["taskDefinitionArn"]
    stop_job(ecs, fleet, "job-a")
    ecs.update_container_instances_state(
        cluster=CLUSTER, containerInstances=[fleet.container_instance_arn("n1")], status="DRAINING"
    )
    response = ecs.run_task(cluster=CLUSTER, taskDefinition=td, group="job-a", startedBy="gpu-recovery")
    assert response["tasks"][0]["containerInstanceArn"] == fleet.container_instance_arn("n2")
    assert fleet.job_tasks("job-a") == [response["tasks"][0]["taskArn"]]
    assert fleet.actions()["tasks_started"] == {"job-a": 1}
    assert fleet.actions()["tasks_stopped"] == {"job-a": 1}


def test_a_restart_never_lands_on_a_node_under_repair_so_its_recheck_still_fits(make_fleet, ecs):
    # n1 is ACTIVE again for its re-check and marked under repair by the recovery that holds it; another job's
    # restart (RestartJob's request, with its memberOf constraint) goes to n2, though n1 comes first in the
    # cluster's order, and n1's check is still placed.
    fleet = make_fleet([NodeSpec("n1"), NodeSpec("n2")], [])
    n1 = fleet.container_instance_arn("n1")
    ecs.put_attributes(cluster=CLUSTER, attributes=[{"name": UNDER_REPAIR_ATTRIBUTE, "targetId": n1}])
    job_td = ecs.register_task_definition(
        family="eight-gpus",
        containerDefinitions=[
            {"name": "c", "image": "x", "memory": 512, "resourceRequirements": [{"type": "GPU", "value": "8"}]}
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    restart = ecs.run_task(
        cluster=CLUSTER, taskDefinition=job_td, group="job-b", placementConstraints=[NOT_UNDER_REPAIR]
    )
    assert restart["tasks"][0]["containerInstanceArn"] == fleet.container_instance_arn("n2")
    assert run_check(ecs, fleet, "n1")["failures"] == []
