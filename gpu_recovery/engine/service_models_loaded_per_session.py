"""Correction: every ``mock_aws`` gives boto3 a new default session, and every session reads the service models again.

moto 5.2.5 ``mock_aws.start`` sets ``boto3.DEFAULT_SESSION`` to None (moto/core/models.py, the
``reset_boto3_session`` default), so the next ``boto3.client`` makes a new botocore session, and a new session
makes a new ``botocore.loaders.Loader``, whose cache (``instance_cache``) is empty: each service's JSON models
(service, endpoint rule set, paginators, waiters; EC2's alone is megabytes) and endpoints.json are parsed again,
~0.25 CPU s per session for the services a scenario calls. A Lambda execution environment parses them once
(its clients share boto3's default session); the engine starts one ``mock_aws`` per scenario, so the simulator
parsed them once per scenario. The models are read-only data for the botocore version installed, so one loader per
data path serves every session of the process; the session's other state (credentials, event hooks, config)
stays per session. Test: ``test_service_models_loaded_per_session.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

from botocore import session as botocore_session
from botocore.loaders import Loader, create_loader

_LOADERS: dict[str | None, Loader] = {}
_LOCK = threading.Lock()


def shared_loader(search_path_string: str | None = None) -> Loader:
    """The process's loader for this data path (AWS_DATA_PATH), made on first use."""
    with _LOCK:
        loader = _LOADERS.get(search_path_string)
        if loader is None:
            loader = _LOADERS[search_path_string] = create_loader(search_path_string)
        return loader


@contextmanager
def correct_service_models_loaded_per_session() -> Iterator[None]:
    """Sessions made while the engine runs take their data loader from ``shared_loader``."""
    with mock.patch.object(botocore_session, "create_loader", shared_loader):
        yield
