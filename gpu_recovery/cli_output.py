"""Shared pieces of the operator commands: tables, JSON, times and durations, exit codes, error reporting."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from gpu_recovery.aws_context import ContextError

OK, FAILED, USAGE = 0, 1, 2


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
