"""The operator commands' argument types: a bad value is a usage error before anything else runs. Plain Python
(no AWS SDK), so that building the parser stays light (`--help` imports no boto3: tests/cli/test_cli_usage.py)."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

_DURATION = re.compile(r"(\d+)([smhdw])")
_INSTANCE_ID = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `2h`, `7d`, `1w`, `1h30m` (argparse type: a bad value is a usage error)."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 30m, 2h, 7d or 1h30m")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in parts))


def instance_id(text: str) -> str:
    """An EC2 instance id, `i-` and 8 or 17 hex digits (argparse type: a bad value is a usage error, before any
    AWS call). https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/resource-ids.html"""
    if not _INSTANCE_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an EC2 instance id (i- and 8 or 17 hex digits)")
    return text


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)
