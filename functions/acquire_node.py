"""LockNode: take the node's repair lock, or wait for the execution that holds it, or reuse its outcome."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from recovery import clock
from recovery.models import LockOutcome, NodeLock
from recovery.observability import logger, step_handler
from recovery.policy import decide_node_lock, reboots_in_window
from recovery.requests import NodeStepRequest
from recovery.settings import Settings, get_settings
from recovery.tables import Tables


def acquire(request: NodeStepRequest, settings: Settings, tables: Tables) -> NodeLock:
    node_id, me = request.node.ec2_instance_id, request.execution.id
    now = clock.utcnow()
    state = tables.get_node(node_id)
    outcome, result = decide_node_lock(
        state, me, request.failure.stopped_at, request.lock_waits, settings.node_lock_max_waits
    )
    if outcome == LockOutcome.ACQUIRED and not tables.lock_node(
        node_id, request.node.container_instance_arn, me, now.isoformat()
    ):
        # Lost a race for the lock: decide again on what the winner wrote.
        state = tables.get_node(node_id)
        outcome, result = decide_node_lock(
            state, me, request.failure.stopped_at, request.lock_waits, settings.node_lock_max_waits
        )
        if outcome == LockOutcome.ACQUIRED:
            outcome = LockOutcome.WAIT
    if result is not None:
        result.container_instance_arn = request.node.container_instance_arn
    reboots = reboots_in_window((state or {}).get("reboots", []), now, settings.reboot_window_hours)
    logger.info("Node lock", node_id=node_id, outcome=outcome.value, reboots_in_window=reboots)
    return NodeLock(
        outcome=outcome,
        lock_waits=request.lock_waits + (1 if outcome == LockOutcome.WAIT else 0),
        reboots_in_window=reboots,
        result=result,
    )


@step_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    return acquire(NodeStepRequest.model_validate(event), settings, Tables.from_settings(settings)).dump()
