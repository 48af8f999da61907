"""Shared pieces of the operator commands: tables, JSON, times and durations, exit codes, error reporting."""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from gpu_recovery.aws_context import ContextError

OK, FAILED, USAGE = 0, 1, 2
_DURATION = re.compile(r"(\d+)([smhdw])")
_INSTANCE_ID = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class CommandError(Exception):
    """A command cannot do what was asked; ``code`` is its exit code."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message)
        self.code = code


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """Turn known failures into one line on stderr and the documented exit code."""

    def wrap(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        @functools.wraps(func)
        def run(args: argparse.Namespace) -> int:
            try:
                return func(args)
            except CommandError as error:
                return fail(name, str(error), error.code)
            except ContextError as error:
                return fail(name, str(error), USAGE)
            except (NoCredentialsError, NoRegionError) as error:
                # The environment lacks what AWS needs, the command line is fine: a failure, not a usage error.
                return fail(name, f"{error} (configure AWS credentials/region, or --profile / --region)", FAILED)
            except ClientError as error:
                detail = error.response.get("Error", {})
                return fail(name, f"{detail.get('Code', 'Error')}: {detail.get('Message', error)}", FAILED)
            except BotoCoreError as error:
                return fail(name, str(error), FAILED)

        return run

    return wrap


def fail(name: str, message: str, code: int) -> int:
    print(f"gpu-recovery {name}: {message}", file=sys.stderr)
    return code


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


def to_datetime(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_time(value: Any) -> str:
    moment = to_datetime(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s".replace(".0s", "s")
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def short_execution(arn: str | None) -> str:
    """An execution ARN's name (the last ARN field): what `show` accepts."""
    return arn.rsplit(":", 1)[-1] if arn else "-"


def render_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Columns padded to their widest cell; the last column is not padded (free text)."""
    cells = [[str(h) for h in headers], *[["-" if c in (None, "") else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) if i < len(headers) - 1 else c for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in cells
    ]
    return "\n".join(line.rstrip() for line in lines)


def print_json(document: Any) -> None:
    print(json.dumps(document, indent=2, sort_keys=True, default=str))


def truncate(text: str, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit or limit <= 0 else flat[: limit - 1] + "…"
