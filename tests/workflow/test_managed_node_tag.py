"""The state machine may reboot only instances tagged MANAGED_NODE_TAG (a deploy prerequisite): a node without the
tag is not rebooted, the reboot fails as AWS fails it (UnauthorizedOperation, by the engine's IAM enforcement
of the synthesized template), and the node is left drained and SUSPECT, with the reason, for an operator."""

from __future__ import annotations

import boto3
import pytest

from gpu_recovery import scenario as scenarios
from gpu_recovery.simulate import deployed

pytestmark = pytest.mark.slow


def test_an_instance_without_the_tag_is_not_rebooted_and_is_left_suspect_for_an_operator() -> None:
    with deployed(scenarios.load("transient-xid79")) as (stack, fleet, _clock):
        (node,) = fleet.instance_ids()
        key, value = stack.config.managed_node_tag
        boto3.client("ec2").delete_tags(Resources=[node], Tags=[{"Key": key, "Value": value}])
        (task,) = fleet.job_tasks("job-a")
        arn = stack.engine.start_execution(stack.state_machine_arn, "untagged", fleet.fail_task(task, 1))
        stack.wait(arn)
        path = [visit.name for visit in stack.engine.path(arn)]
        assert "RebootInstance" in path
        assert path[path.index("RebootInstance") + 1 :][:2] == ["RefundReboot", "MarkNodeSuspect"]
        assert fleet.actions()["reboots"] == {}
        (_, denied), *_ = stack.engine.authorizer.denied
        assert (denied.action, denied.resource.rsplit("/", 1)[-1]) == ("ec2:RebootInstances", node)
        nodes = boto3.resource("dynamodb").Table(stack.config.NODE_TABLE_NAME).scan()["Items"]
        state = next(row for row in nodes if row["recordKey"] == "STATE")
        assert state["status"] == "SUSPECT"
        # EC2 errors reach the state machine as Ec2.Ec2Exception (the engine's service_error_names).
        assert state["reason"].startswith("reboot not performed: Ec2.Ec2Exception: ")
        assert "not authorized to perform: ec2:RebootInstances" in state["reason"]
        assert "lockOwner" not in state
        ci = boto3.client("ecs").describe_container_instances(
            cluster=fleet.cluster_name, containerInstances=[fleet.container_instance_arn(fleet.node_name(node))]
        )["containerInstances"][0]
        assert ci["status"] == "DRAINING"
