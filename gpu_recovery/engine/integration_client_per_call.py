"""Correction: moto creates a new boto3 client for every service-integration call of an execution.

moto 5.2.5 ``moto.stepfunctions.parser.asl.utils.boto_client.boto_client_for(region, service, credentials)`` builds
a client (service model, endpoint resolution, a copy of the session's event hooks: ~5 ms of CPU) for each Lambda
invoke, each ``ecs:runTask.sync``, each ``aws-sdk:`` and DynamoDB/SNS integration call: a third of the clients a
storm creates. A client is safe to share between threads (boto3 user guide, "Clients": "Low-level clients are
thread safe"), and these carry no per-call state: moto builds them with parameter validation off and a single
attempt (no retry quota, no rate limiter), so one client per (session, region, service) serves every call alike.
The cache lives as long as the engine (a new ``mock_aws`` means new sessions). Like any client, a cached one runs
the session's event hooks registered before it was created.
Test: ``test_integration_client_per_call.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.client import BaseClient
from moto.stepfunctions.parser.asl.utils import boto_client as moto_boto_client

from gpu_recovery.engine.moto_bindings import replaced_everywhere


@contextmanager
def correct_integration_client_per_call() -> Iterator[None]:
    """Replace ``boto_client_for`` in moto's module and in every moto module that imported it by name."""
    original = moto_boto_client.boto_client_for
    clients: dict[tuple[Any, str, str], BaseClient] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> BaseClient:
        # moto ignores state_credentials (every client signs with the same fixed keys), so they are no part of the key.
        key = (boto3._get_default_session(), region, service)
        with lock:
            client = clients.get(key)
            if client is None:
                client = clients[key] = original(region, service, state_credentials)
        return client

    with replaced_everywhere("boto_client_for", original, boto_client_for):
        yield
