"""LockNode: take the node's repair lock, or wait for the execution that holds it, or reuse its outcome.
A lock whose execution no longer runs (aborted, timed out, failed without cleaning up) is taken over."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from recovery import clock
from recovery.aws import Ecs, StepFunctions
from recovery.models import CamelModel, LockOutcome, NodeResult
from recovery.observability import logger, metrics, step_handler
from recovery.policy import decide_node_lock, reboots_in_window
from recovery.requests import NodeStepRequest
from recovery.settings import Settings, get_settings
from recovery.tables import Tables


class NodeLock(CamelModel):
    outcome: LockOutcome
    lock_waits: int
    reboots_in_window: int
    result: NodeResult | None = None


def acquire(
    request: NodeStepRequest, settings: Settings, tables: Tables, executions: StepFunctions, ecs: Ecs
) -> NodeLock:
    node_id, me = request.node.ec2_instance_id, request.execution.id
    now = clock.utcnow()

    def decide(state: dict[str, Any] | None) -> tuple[LockOutcome, Any, str | None]:
        owner = (state or {}).get("lockOwner")
        dead = owner if owner and owner != me and not executions.is_running(str(owner)) else None
        outcome, result = decide_node_lock(
            state,
            me,
            request.failure.stopped_at,
            request.lock_waits,
            settings.NODE_LOCK_MAX_WAITS,
            owner_running=dead is None,
        )
        return outcome, result, dead

    state = tables.get_node(node_id)
    outcome, result, dead = decide(state)
    if outcome == LockOutcome.ACQUIRED:
        locked, seen = tables.lock_node(
            node_id, request.node.container_instance_arn, me, now.isoformat(), dead_owner=dead
        )
        if not locked:
            # Lost a race for the lock: decide again on what the winner wrote, as the refusal returned it.
            state = seen
            outcome, result, dead = decide(state)
            if outcome == LockOutcome.ACQUIRED:
                outcome, dead = LockOutcome.WAIT, None
    if dead:
        # The lock outlived its owner (its lease): CleanupExecution should have released it. Alarmed on.
        metrics.add_metric(name="StaleLock", unit=MetricUnit.Count, value=1)
    if outcome == LockOutcome.ACQUIRED and not request.dry_run:
        # From now until the node is released verified, no restarted task is placed on it.
        ecs.mark_under_repair(request.node.container_instance_arn)
    if outcome == LockOutcome.ACQUIRED and dead:
        tables.add_history(node_id, "LOCK_TAKEN_OVER", me, now, {"reason": f"lock owner {dead} no longer runs"})
    if result is not None:
        result.container_instance_arn = request.node.container_instance_arn
    reboots = reboots_in_window((state or {}).get("reboots", []), now, settings.REBOOT_WINDOW_HOURS)
    logger.info("Node lock", node_id=node_id, outcome=outcome.value, reboots_in_window=reboots, taken_from=dead)
    return NodeLock(
        outcome=outcome,
        lock_waits=request.lock_waits + (1 if outcome == LockOutcome.WAIT else 0),
        reboots_in_window=reboots,
        result=result,
    )


@step_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    request = NodeStepRequest.model_validate(event)
    ecs = Ecs(settings.ECS_CLUSTER_NAME)
    return acquire(request, settings, Tables.from_settings(settings), StepFunctions(), ecs).dump()
