"""The fault table (gpu_recovery/sim/faults.py) agrees with the DCGM output profiles and NVIDIA's XID catalog."""

from __future__ import annotations

from gpu_recovery.sim import dcgm
from gpu_recovery.sim.faults import FAULTS, Reset


def test_every_gpu_fault_the_check_reports_has_a_row() -> None:
    assert set(dcgm.FAULT_PROFILES) <= set(FAULTS)


def test_a_reset_clears_exactly_the_xids_nvidia_resolves_with_a_gpu_reset() -> None:
    cleared = {kind for kind, behaviour in FAULTS.items() if behaviour.reset is Reset.CLEARS}
    # XID 48 alone is WORKFLOW_XID_48, whose resolution is a GPU reset (NVIDIA's XID catalog, buckets sheet).
    assert cleared == {"xid48", "xid63", "xid74", "xid94", "xid95", "xid119"}
    assert FAULTS["xid79"].reset is Reset.FAILS  # the GPU fell off the bus: nothing to reset
