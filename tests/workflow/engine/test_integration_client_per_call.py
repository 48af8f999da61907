"""Correction ``integration_client_per_call``: one boto3 client per (session, region, service) serves every
service-integration call of every execution."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from botocore.session import Session
from engine_harness import StartEngine, run

pytestmark = pytest.mark.slow

# Two SNS integration calls in one execution.
TWO_CALLS = {
    "StartAt": "First",
    "States": {
        "First": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sns:listTopics", "Next": "Second"},
        "Second": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sns:listTopics", "End": True},
    },
}


@contextmanager
def sns_clients_created() -> Iterator[list[str]]:
    created: list[str] = []
    create_client = Session.create_client

    def counted(session: Session, service_name: str, *args: Any, **kwargs: Any) -> Any:
        if service_name == "sns":
            created.append(service_name)
        return create_client(session, service_name, *args, **kwargs)

    with mock.patch.object(Session, "create_client", counted):
        yield created


def test_moto_still_creates_a_client_per_integration_call(start_engine: StartEngine, tmp_path: Path) -> None:
    """Shows the moto behaviour. If this fails, moto reuses its clients: remove the correction."""
    engine = start_engine(without=("integration_client_per_call",))
    with sns_clients_created() as created:
        assert run(engine, tmp_path, TWO_CALLS)["status"] == "SUCCEEDED"
    assert len(created) == 2


def test_one_client_serves_every_call_of_every_execution(start_engine: StartEngine, tmp_path: Path) -> None:
    engine = start_engine()
    with sns_clients_created() as created:
        for run_dir in ("a", "b"):
            (tmp_path / run_dir).mkdir()
            assert run(engine, tmp_path / run_dir, TWO_CALLS)["status"] == "SUCCEEDED"
    assert len(created) == 1
