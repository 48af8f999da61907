"""The ECS/CloudWatch Logs adapter: request limits and client configuration."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError
from unit_helpers import FakeLambdaContext

from recovery.aws import DESCRIBE_CONTAINER_INSTANCES_BATCH, Ecs, Logs
from recovery.models import Throttled
from recovery.observability import step_handler
from recovery.tables import Tables


def test_container_instances_are_described_at_most_100_at_a_time() -> None:
    arns = [f"arn:aws:ecs:us-east-1:123456789012:container-instance/c/{i:032x}" for i in range(250)]
    client = mock.Mock()

    def describe(cluster: str, containerInstances: list[str]) -> dict[str, Any]:
        return {
            "containerInstances": [
                {"containerInstanceArn": a, "ec2InstanceId": f"i-{a[-8:]}"} for a in containerInstances
            ]
        }

    client.describe_container_instances.side_effect = describe
    ecs = Ecs("c")
    ecs.__dict__["client"] = client
    ids = ecs.nodes(arns)
    sizes = [len(call.kwargs["containerInstances"]) for call in client.describe_container_instances.call_args_list]
    assert sizes == [100, 100, 50]
    assert max(sizes) <= DESCRIBE_CONTAINER_INSTANCES_BATCH
    assert len(ids) == 250


def test_no_container_instances_means_no_call() -> None:
    ecs = Ecs("c")
    ecs.__dict__["client"] = client = mock.Mock()
    assert ecs.nodes([]) == {}
    client.describe_container_instances.assert_not_called()


def test_step_lambda_clients_use_adaptive_retries() -> None:
    assert Ecs("c").client.meta.config.retries["mode"] == "adaptive"
    assert Logs().client.meta.config.retries["mode"] == "adaptive"
    tables = Tables("t", "j", "n", 30)
    assert tables.resource.meta.client.meta.config.retries["mode"] == "adaptive"


def test_a_call_still_throttled_after_the_sdk_retries_fails_the_step_as_throttled() -> None:
    def failing(code: str) -> Any:
        @step_handler
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": code, "Message": "m"}}, "UpdateItem")

        return handler

    context = FakeLambdaContext()
    # The name the definition's Retry of ClassifyFailure matches (a Lambda error's name is its class name).
    with pytest.raises(Throttled):
        failing("ProvisionedThroughputExceededException")({}, context)
    with pytest.raises(ClientError):  # anything else keeps its own error
        failing("AccessDeniedException")({}, context)
