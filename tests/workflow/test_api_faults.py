"""Injected AWS errors reach the definition under the names Step Functions gives them, and its Retry and Catch
blocks handle them (the shipped api-faults-retried, reboot-denied-one-node and lambda-crash-node-suspect scenarios
assert the outcomes; this checks the errors on the way)."""

from __future__ import annotations

import pytest

from gpu_recovery import scenario as scenarios
from gpu_recovery.scenario import Event
from gpu_recovery.simulate import _fail, deployed

pytestmark = pytest.mark.slow


def test_each_injected_service_error_is_retried_under_its_step_functions_name() -> None:
    with deployed(scenarios.load("api-faults-retried")) as (stack, fleet, _clock):
        event = _fail(fleet, Event(job="job-a", node="node-1"))
        arn = stack.engine.start_execution(stack.state_machine_arn, "throttled", event)
        assert stack.engine.wait(arn)["status"] == "SUCCEEDED"
        failed = {
            (e["taskFailedEventDetails"]["resource"], e["taskFailedEventDetails"]["error"])
            for e in stack.engine.history(arn)
            if "taskFailedEventDetails" in e
        }
        hit_rules = {index for index, _ in stack.engine.faults.injected}
        rules = len(stack.engine.faults.rules)
        injected = {what for _, what in stack.engine.faults.injected}
    # Every rule fired: a rule whose API is no longer called (e.g. after the node states were reordered) would
    # exercise nothing and still let the recovery succeed.
    assert hit_rules == set(range(rules))
    assert {
        ("updateContainerInstancesState", "Ecs.EcsException"),  # ECS models no throttling error
        ("runTask.sync", "ECS.AmazonECSException"),
        ("rebootInstances", "Ec2.Ec2Exception"),  # EC2 models no errors at all
        ("publish", "SNS.AmazonSNSException"),
        ("updateItem", "DynamoDB.ThrottlingException"),  # the job lock
    } <= failed
    # The Lambdas' own throttled reads are absorbed by their SDK retries: no step failed on them.
    assert "ecs:DescribeTasks" in injected
    assert not [error for _, error in failed if "DescribeTasks" in error]
