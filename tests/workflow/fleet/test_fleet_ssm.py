"""SSM Run Command: `nvidia-smi --gpu-reset` on the named instances, and only those."""

from __future__ import annotations

import boto3
from fleet_helpers import REGION

from gpu_recovery.sim import FaultSpec, NodeSpec, Timings

RESET = {"gpuIndexes": ["0"]}


def test_send_command_resets_only_the_named_instance(make_fleet, clock):
    nodes = [NodeSpec("n1", fault=FaultSpec("xid94")), NodeSpec("n2", fault=FaultSpec("xid94"))]
    fleet = make_fleet(nodes, [], timings=Timings(reset_seconds=15))
    ssm = boto3.client("ssm", region_name=REGION)
    command = ssm.send_command(
        InstanceIds=[fleet.instance_id("n1")], DocumentName="GpuResetDocument", Parameters=RESET
    )["Command"]
    # moto alone would list (and the fleet would reset) every instance of the region.
    assert command["InstanceIds"] == [fleet.instance_id("n1")]
    assert fleet.gpu_resets() == {"n1": 1}
    assert not fleet.fault_active("n1")
    assert fleet.fault_active("n2")


def test_reset_is_in_progress_for_reset_seconds(make_fleet, clock):
    fleet = make_fleet([NodeSpec("n1", fault=FaultSpec("xid94"))], [], timings=Timings(reset_seconds=15))
    ssm = boto3.client("ssm", region_name=REGION)
    instance_id = fleet.instance_id("n1")
    command_id = ssm.send_command(InstanceIds=[instance_id], DocumentName="GpuResetDocument", Parameters=RESET)[
        "Command"
    ]["CommandId"]
    assert ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)["Status"] == "InProgress"
    clock.advance_to(15)
    invocation = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id)
    assert (invocation["Status"], invocation["ResponseCode"]) == ("Success", 0)
    assert "GPU 0 was successfully reset." in invocation["StandardOutputContent"]
