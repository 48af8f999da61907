"""`gpu-recovery locks` and `locks release` against moto."""

from __future__ import annotations

import json

import boto3
from cli_helpers import CliRun, Deployment

GONE_OWNER = "arn:aws:states:us-east-1:123456789012:execution:EcsGpuRecoveryStack-recovery:gone"


def seed_stale_locks(deployment: Deployment) -> str:
    """A job lock, a node mid-reboot and a fleet-breaker slot held by an execution that does not exist."""
    ddb = boto3.resource("dynamodb")
    config, node_id = deployment.config, deployment.instance_ids[0]
    ddb.Table(config.JOB_TABLE_NAME).put_item(
        Item={
            "jobId": "job-a",
            "status": "RECOVERING",
            "lockOwner": GONE_OWNER,
            "lockedAt": "2026-11-20T03:14:30+00:00",
        }
    )
    nodes = ddb.Table(config.NODE_TABLE_NAME)
    nodes.put_item(
        Item={
            "nodeId": node_id,
            "recordKey": "STATE",
            "status": "REBOOTING",
            "lockOwner": GONE_OWNER,
            "lockedAt": "2026-11-20T03:15:00+00:00",
            "containerInstanceArn": deployment.container_instances[0],
        }
    )
    nodes.put_item(
        Item={
            "nodeId": "FLEET#gpu-cluster",
            "recordKey": "REPAIRS",
            "slots": {node_id: {"by": GONE_OWNER, "until": "2026-11-20T04:00:00+00:00"}},
        }
    )
    return node_id


def test_locks_lists_every_lock_with_its_owner_status(deployment: Deployment, cli: CliRun) -> None:
    node_id = seed_stale_locks(deployment)
    code, out, _ = cli("locks", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["kind"], r["target"], r["ownerStatus"]) for r in rows] == [
        ("JOB", "job-a", "GONE"),
        ("NODE", node_id, "GONE"),
        ("SLOT", node_id, "GONE"),
    ]
    code, out, _ = cli("locks")
    assert code == 0
    assert "stale: gone no longer runs" in out


def test_locks_release_frees_what_a_dead_execution_holds(deployment: Deployment, cli: CliRun) -> None:
    node_id = seed_stale_locks(deployment)
    code, out, err = cli("locks", "release", GONE_OWNER, "--reason", "its cleanup event was lost")
    assert code == 0, err
    assert "job job-a: lock released" in out
    assert f"node {node_id}: lock released, SUSPECT and DRAINING" in out
    code, out, _ = cli("locks", "--json")
    assert json.loads(out) == []
    code, out, _ = cli("locks", "release", GONE_OWNER, "--reason", "again")
    assert code == 0
    assert "holds no lock" in out
