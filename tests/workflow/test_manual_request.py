"""A recovery started by hand (console or `gpu-recovery start`) for a task ARN walks the same workflow."""

from __future__ import annotations

import pytest

from gpu_recovery import scenario as scenarios
from gpu_recovery.simulate import deployed

pytestmark = pytest.mark.slow


def test_manual_dry_run_request_decides_like_an_event_and_touches_nothing() -> None:
    with deployed(scenarios.load("transient-xid79")) as (stack, fleet, _clock):
        (task,) = fleet.job_tasks("job-a")
        fleet.fail_task(task, exit_code=1)
        request = {"taskArn": task, "reason": "on-call suspects GPU 0", "dryRun": True}
        arn = stack.engine.start_execution(stack.state_machine_arn, "manual-dry-run", request)
        description = stack.engine.wait(arn)
        path = [visit.name for visit in stack.engine.path(arn)]
        actions = fleet.actions()
        (notification,) = stack.notifications()
    assert description["status"] == "SUCCEEDED"
    assert "RecordDryRun" in path
    assert "RebootInstance" not in path
    assert actions["reboots"] == {}
    assert actions["drains"] == {}
    assert actions["tasks_started"] == {}
    assert notification["subject"].startswith("[GPU Recovery] DRY RUN job-a")
