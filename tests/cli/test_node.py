"""`gpu-recovery nodes` and `node history|release|quarantine` against moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from cli_helpers import CliRun, Deployment

from gpu_recovery.cli import parser
from recovery.models import NodeStatus
from recovery.tables import Tables

STALE_OWNER = "arn:aws:states:us-east-1:123456789012:execution:EcsGpuRecoveryStack-recovery:gone"


def tables(deployment: Deployment) -> Tables:
    c = deployment.config
    return Tables(c.TASK_TABLE_NAME, c.JOB_TABLE_NAME, c.NODE_TABLE_NAME, 90)


def seed(deployment: Deployment, index: int, **fields: object) -> str:
    node_id = deployment.instance_ids[index]
    item = {"nodeId": node_id, "recordKey": "STATE", "containerInstanceArn": deployment.container_instances[index]}
    boto3.resource("dynamodb").Table(deployment.config.NODE_TABLE_NAME).put_item(Item=item | fields)
    return node_id


def ci_status(deployment: Deployment, index: int) -> str:
    ecs = boto3.client("ecs")
    found = ecs.describe_container_instances(
        cluster="gpu-cluster", containerInstances=[deployment.container_instances[index]]
    )
    return str(found["containerInstances"][0]["status"])


def test_nodes_table_and_json(deployment: Deployment, cli: CliRun) -> None:
    now = datetime.now(UTC).isoformat()
    seed(
        deployment,
        0,
        status="QUARANTINED",
        reason="fault survived a reboot",
        reboots=[now, now],
        lastVerdict={"status": "UNHEALTHY", "action": "REBOOT"},
        updatedAt=now,
    )
    seed(deployment, 1, status="HEALTHY", lockOwner=STALE_OWNER, reboots=[])
    code, out, _ = cli("nodes")
    assert code == 0
    assert out.splitlines()[0].split()[:5] == ["NODE", "STATUS", "LAST", "VERDICT", "REBOOTS/24H"]
    row = next(line for line in out.splitlines() if deployment.instance_ids[0] in line)
    assert "QUARANTINED" in row
    assert "UNHEALTHY/REBOOT" in row
    assert " 2 " in row
    assert "gone" in next(line for line in out.splitlines() if deployment.instance_ids[1] in line)
    code, out, _ = cli("nodes", "--status", "quarantined", "--json")
    assert code == 0
    assert [r["nodeId"] for r in json.loads(out)] == [deployment.instance_ids[0]]


@pytest.mark.parametrize("status", list(NodeStatus))
def test_nodes_status_takes_every_status_the_workflow_writes(status: NodeStatus) -> None:
    args = parser(["nodes"]).parse_args(["nodes", "--status", status.lower()])
    assert args.status == status


def test_nodes_lists_a_node_resetting_its_gpu(deployment: Deployment, cli: CliRun) -> None:
    node_id = seed(deployment, 0, status=NodeStatus.RESETTING_GPU, reboots=[])
    seed(deployment, 1, status=NodeStatus.HEALTHY, reboots=[])
    code, out, _ = cli("nodes", "--status", "RESETTING_GPU", "--json")
    assert code == 0
    assert [r["nodeId"] for r in json.loads(out)] == [node_id]


def test_release_clears_quarantine_records_who_and_reactivates(deployment: Deployment, cli: CliRun) -> None:
    node_id = seed(deployment, 0, status="QUARANTINED", reason="xid 79", reboots=["2026-01-01T00:00:00+00:00"])
    ecs = boto3.client("ecs")
    ci = deployment.container_instances[0]
    ecs.update_container_instances_state(cluster="gpu-cluster", containerInstances=[ci], status="DRAINING")
    # The quarantining recovery left the node marked under repair: released, restarts may land on it again.
    mark = {"name": "gpu-recovery.under-repair", "targetId": ci}
    ecs.put_attributes(cluster="gpu-cluster", attributes=[mark])
    code, out, err = cli("node", "release", node_id, "--reason", "GPU swapped by DC ops")
    assert (code, err) == (0, "")
    assert "QUARANTINED -> HEALTHY" in out
    assert "DRAINING -> ACTIVE" in out
    assert "attribute gpu-recovery.under-repair removed" in out
    [described] = ecs.describe_container_instances(cluster="gpu-cluster", containerInstances=[ci])["containerInstances"]
    assert "gpu-recovery.under-repair" not in {a["name"] for a in described.get("attributes", [])}
    state = tables(deployment).get_node(node_id)
    assert state is not None
    assert state["status"] == "HEALTHY"
    assert "GPU swapped by DC ops" in state["reason"]
    assert ci_status(deployment, 0) == "ACTIVE"
    [row] = tables(deployment).history(node_id)
    assert row["kind"] == "RELEASE"
    assert row["by"] == "arn:aws:sts::123456789012:user/moto"
    assert row["detail"]["reason"] == "GPU swapped by DC ops"
    assert row["detail"]["previousStatus"] == "QUARANTINED"
    code, out, _ = cli("node", "history", node_id)
    assert code == 0
    assert "RELEASE" in out
    assert "user/moto" in out
    assert "GPU swapped by DC ops" in out
    code, out, _ = cli("node", "release", node_id, "--reason", "again")
    assert code == 0
    assert "nothing to release" in out


def test_release_clears_a_stale_lock_and_can_keep_draining(deployment: Deployment, cli: CliRun) -> None:
    node_id = seed(deployment, 1, status="CHECKING", lockOwner=STALE_OWNER)
    boto3.client("ecs").update_container_instances_state(
        cluster="gpu-cluster", containerInstances=[deployment.container_instances[1]], status="DRAINING"
    )
    code, out, _ = cli("node", "release", node_id, "--reason", "stale lock", "--keep-draining")
    assert code == 0
    assert "lock of gone cleared" in out
    state = tables(deployment).get_node(node_id)
    assert state is not None
    assert "lockOwner" not in state
    assert state["status"] == "HEALTHY"
    assert ci_status(deployment, 1) == "DRAINING"


def test_release_refuses_a_lock_held_by_a_running_execution(deployment: Deployment, cli: CliRun) -> None:
    sfn = boto3.client("stepfunctions")
    running = sfn.start_execution(stateMachineArn=deployment.state_machine_arn, name="live", input="{}")["executionArn"]
    node_id = seed(deployment, 0, status="REBOOTING", lockOwner=running)
    code, _, err = cli("node", "release", node_id, "--reason", "x")
    assert code == 1
    assert "being repaired by live (RUNNING)" in err
    assert "--force" in err
    assert tables(deployment).get_node(node_id)["status"] == "REBOOTING"  # type: ignore[index]
    code, _, _ = cli("node", "release", node_id, "--reason", "x", "--force")
    assert code == 0


def test_quarantine_drains_and_records(deployment: Deployment, cli: CliRun) -> None:
    node_id = deployment.instance_ids[1]  # never seen by the workflow: accepted, it is in the cluster
    code, out, err = cli("node", "quarantine", node_id, "--reason", "ECC errors in dmesg")
    assert (code, err) == (0, "")
    assert "unrecorded -> QUARANTINED" in out
    assert "ACTIVE -> DRAINING" in out
    state = tables(deployment).get_node(node_id)
    assert state is not None
    assert state["status"] == "QUARANTINED"
    assert state["containerInstanceArn"] == deployment.container_instances[1]
    assert ci_status(deployment, 1) == "DRAINING"
    [row] = tables(deployment).history(node_id)
    assert row["kind"] == "QUARANTINE"
    assert row["detail"]["reason"] == "ECC errors in dmesg"
    assert row["by"]
    code, out, _ = cli("node", "quarantine", node_id, "--reason", "again")
    assert code == 0
    assert "already QUARANTINED" in out


def test_unknown_node(deployment: Deployment, cli: CliRun) -> None:
    for argv in (
        ("node", "history", "i-0000000000000dead"),
        ("node", "release", "i-0000000000000dead", "--reason", "x"),
        ("node", "quarantine", "i-0000000000000dead", "--reason", "x"),
    ):
        code, _, err = cli(*argv)
        assert code == 1, argv
        assert "unknown node i-0000000000000dead" in err


def test_reason_is_required(deployment: Deployment, cli: CliRun) -> None:
    code, _, err = cli("node", "quarantine", deployment.instance_ids[0])
    assert code == 2
    assert "--reason" in err


def test_help(cli: CliRun) -> None:
    code, out, _ = cli("node", "release", "--help")
    assert code == 0
    assert "--keep-draining" in out
    assert "ACTIVE" in out


def test_node_actions_print_one_json_document_with_json(deployment: Deployment, cli: CliRun) -> None:
    node_id = deployment.instance_ids[1]
    code, out, _ = cli("--json", "node", "quarantine", node_id, "--reason", "ECC errors")
    assert code == 0
    assert json.loads(out) == {
        "nodeId": node_id,
        "action": "quarantine",
        "done": [
            f"node {node_id}: unrecorded -> QUARANTINED",
            f"container instance {deployment.container_instances[1].rsplit('/', 1)[-1]}: ACTIVE -> DRAINING",
        ],
    }
    code, out, _ = cli("node", "release", node_id, "--reason", "replaced", "--json")
    assert code == 0
    assert json.loads(out)["done"][0] == f"node {node_id}: QUARANTINED -> HEALTHY"
