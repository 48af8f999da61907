"""The XID catalog and the DCGM severities are data: this asserts the tables themselves, row by row."""

from __future__ import annotations

import pytest

from recovery.xid_catalog import (
    CATALOG_SOURCE,
    DCGM_SEVERITIES,
    UNKNOWN_XID_ACTION,
    XID_CATALOG,
    GpuAction,
    Severity,
    most_severe,
    severity_action,
    xid_action,
)

A = GpuAction
# xid -> (NVIDIA's immediate-action bucket, our action, action when repeated)
EXPECTED = {
    13: ("RESTART_APP", A.RESTART_APP, None),
    31: ("RESTART_APP", A.RESTART_APP, None),
    43: ("RESTART_APP", A.RESTART_APP, None),
    45: ("IGNORE", A.IGNORE, None),
    48: ("WORKFLOW_XID_48", A.RESET_GPU, None),
    61: ("RESET_GPU", A.RESET_GPU, None),
    62: ("RESET_GPU", A.RESET_GPU, None),
    63: ("RESET_GPU", A.RESET_GPU, None),
    64: ("CONTACT_SUPPORT", A.REPLACE, None),
    69: ("RESET_GPU", A.RESET_GPU, None),
    74: ("WORKFLOW_NVLINK_ERR", A.RESET_GPU, None),
    79: ("RESTART_BM", A.REBOOT, A.REPLACE),
    92: ("IGNORE", A.IGNORE, None),
    94: ("RESTART_APP", A.RESTART_APP, None),
    95: ("RESET_GPU", A.RESET_GPU, None),
    109: ("RESTART_APP", A.RESTART_APP, None),
    119: ("RESET_GPU", A.RESET_GPU, None),
    120: ("RESET_GPU", A.RESET_GPU, None),
    140: ("RESET_GPU", A.RESET_GPU, None),
}


def test_the_mapping_table_is_exactly_this() -> None:
    actual = {x: (e.catalog_action, e.action, e.repeat_action) for x, e in XID_CATALOG.items()}
    assert actual == EXPECTED


def test_catalog_names_its_source_and_is_keyed_consistently() -> None:
    assert CATALOG_SOURCE.startswith("https://docs.nvidia.com/")
    assert all(entry.xid == xid and entry.name for xid, entry in XID_CATALOG.items())
    assert list(XID_CATALOG) == sorted(XID_CATALOG)


def test_severity_table() -> None:
    assert dict(DCGM_SEVERITIES.items()) == {
        0: (Severity.NONE, A.IGNORE),
        1: (Severity.MONITOR, A.IGNORE),
        2: (Severity.ISOLATE, A.REPLACE),
        3: (Severity.UNKNOWN, A.REBOOT),
        4: (Severity.TRIAGE, A.REBOOT),
        5: (Severity.CONFIG, A.REBOOT),
        6: (Severity.RESET, A.RESET_GPU),
    }


@pytest.mark.parametrize("xid", sorted(EXPECTED))
def test_xid_action_says_why(xid: int) -> None:
    action, why = xid_action(xid)
    assert action == EXPECTED[xid][1]
    assert f"XID {xid}" in why
    assert EXPECTED[xid][0] in why


def test_xid79_twice_is_replace() -> None:
    assert xid_action(79, occurrences=2)[0] == A.REPLACE
    assert "2 times" in xid_action(79, occurrences=2)[1]


def test_unknown_xid_and_severity() -> None:
    assert xid_action(999)[0] == UNKNOWN_XID_ACTION == A.REBOOT
    assert severity_action(None)[0] == A.REBOOT
    assert severity_action(42)[0] == A.REBOOT


def test_most_severe_orders_actions() -> None:
    assert most_severe([A.RESTART_APP, A.REPLACE, A.RESET_GPU]) == A.REPLACE
    assert most_severe([A.RESET_GPU, A.REBOOT]) == A.REBOOT
    assert most_severe([]) == A.IGNORE
