"""Correction ``serializer_aliases_per_value``: the attribute names moto's serializer tries for a member are worked
out once per (object class, shape, member), and the responses stay the same."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import boto3
import pytest
from moto import mock_aws
from moto.core.serialize import AttributePicker

from gpu_recovery.engine.serializer_aliases_per_value import correct_serializer_aliases_per_value


@pytest.fixture
def describe() -> Iterator[Any]:
    """DescribeContainerInstances of a two-instance cluster, as a function returning the response."""
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        ecs = boto3.client("ecs", region_name="us-east-1")
        ecs.create_cluster(clusterName="gpu")
        for instance in ec2.run_instances(ImageId="ami-12345678", MinCount=2, MaxCount=2)["Instances"]:
            document = json.dumps({"instanceId": instance["InstanceId"], "region": "us-east-1"})
            ecs.register_container_instance(cluster="gpu", instanceIdentityDocument=document)
        arns = ecs.list_container_instances(cluster="gpu")["containerInstanceArns"]

        def _describe() -> dict[str, Any]:
            response = ecs.describe_container_instances(cluster="gpu", containerInstances=arns)
            response.pop("ResponseMetadata")
            return dict(response)

        yield _describe


@contextmanager
def alias_lookups() -> Iterator[list[str]]:
    """Every time moto's alias providers are asked for a member's names."""
    asked: list[str] = []
    moto_lookup = AttributePicker.get_possible_keys

    def counted(picker: AttributePicker, context: Any) -> Any:
        asked.append(context.key)
        return moto_lookup(picker, context)

    with mock.patch.object(AttributePicker, "get_possible_keys", counted):
        yield asked


def test_moto_still_works_out_aliases_for_every_value(describe: Any) -> None:
    """Shows the moto behaviour. If this fails, moto remembers the aliases itself: remove the correction."""
    with alias_lookups() as asked:
        describe()
        first = len(asked)
        describe()
    assert first > 0
    assert len(asked) == 2 * first


def test_aliases_are_worked_out_once_and_responses_are_unchanged(describe: Any) -> None:
    moto_response = describe()
    with correct_serializer_aliases_per_value(), alias_lookups() as asked:
        corrected = describe()
        first = len(asked)
        again = describe()
    assert first > 0
    assert len(asked) == first  # the second response asked nothing new
    assert corrected == again == moto_response
