"""Correction ``service_models_loaded_per_session``: the sessions of successive engines (one ``mock_aws`` each,
as the simulator runs one per scenario) share one botocore loader, so service models are parsed once per process."""

from __future__ import annotations

import boto3
import pytest
from botocore.loaders import Loader

from gpu_recovery.clock import SimClock
from gpu_recovery.engine import LocalEngine


def _loader_in_a_new_engine(clock: SimClock, without: tuple[str, ...]) -> Loader:
    with LocalEngine(clock, without=without):
        boto3.client("sns")
        loader: Loader = boto3.DEFAULT_SESSION._session.get_component("data_loader")  # type: ignore[union-attr]
        return loader


@pytest.mark.parametrize(("without", "shared"), [(("service_models_loaded_per_session",), False), ((), True)])
def test_successive_engines_share_the_loader_only_with_the_correction(
    clock: SimClock, without: tuple[str, ...], shared: bool
) -> None:
    """Without the correction this shows moto's behaviour (if it fails there, moto keeps boto3's session across
    mocks: remove the correction); with it, the second engine's session reuses the first one's loader."""
    first = _loader_in_a_new_engine(clock, without)
    second = _loader_in_a_new_engine(clock, without)
    assert (first is second) is shared
