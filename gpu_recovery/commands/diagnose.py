"""`gpu-recovery diagnose FILE`: the verdict AnalyzeDiag would reach on a DCGM check's output, and why.

FILE is raw `dcgmi diag -j` output (or dcgmi's plain text), the check wrapper's `GPU_RECOVERY_RESULT {json}` line,
any log containing either, or a kernel log alone (`dmesg`, `journalctl -k`, /var/log/messages): its `NVRM: Xid`
lines since the last boot count, and each says what NVIDIA's XID catalog asks for. `-` reads stdin. The logic
is the step Lambda's own (`recovery.diagnosis`), so what this prints is what the workflow decides.

Exit codes: 0 a verdict was read (HEALTHY or UNHEALTHY: look at `action`), 1 INCONCLUSIVE (the output cannot
be trusted: killed, truncated, unknown version...), 2 usage error (missing or unreadable file).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gpu_recovery  # noqa: F401 - puts functions/ on sys.path for `recovery`
from recovery.diagnosis import diagnose
from recovery.models import VerdictStatus
from recovery.requests import Verdict


def run(args: argparse.Namespace) -> int:
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        print(f"gpu-recovery diagnose: cannot read {args.file}: {error.strerror or error}", file=sys.stderr)
        return 2
    gpu_ids = [g.strip() for g in args.gpu_ids.split(",") if g.strip()] if args.gpu_ids else None
    verdict = diagnose(args.exit_code, text, gpu_ids, since=args.since, dcgm_version=args.dcgm_version)
    if args.json:
        print(json.dumps(document(verdict), indent=2))
    else:
        print(render(verdict))
    return 1 if verdict.status == VerdictStatus.INCONCLUSIVE else 0


def document(verdict: Verdict) -> dict[str, Any]:
    dumped = verdict.dump()
    return {
        "status": verdict.status.value,
        "action": verdict.action.value,
        "exitCode": verdict.exit_code,
        "dcgmVersion": verdict.dcgm_version,
        "gpus": dumped.get("gpus", []),
        "reasons": verdict.reasons,
    }


def render(verdict: Verdict) -> str:
    exit_text = "unknown" if verdict.exit_code is None else str(verdict.exit_code)
    lines = [
        f"verdict: {verdict.status.value}  action: {verdict.action.value}",
        f"dcgmi exit code: {exit_text}  DCGM layout/version: {verdict.dcgm_version or 'unknown'}",
        "why:",
        *(f"  - {reason}" for reason in verdict.reasons),
    ]
    for gpu in verdict.gpus:
        label = gpu.entity or (f"GPU {gpu.index}" if gpu.index is not None else "GPU ?")
        extra = f" {gpu.uuid}" if gpu.uuid else ""
        if gpu.used_by_failed_task is not None:
            extra += " (used by the failed task)" if gpu.used_by_failed_task else " (NOT used by the failed task)"
        lines.append(f"{label}{extra}: {gpu.action}")
        lines += [f"    failed test: {test}" for test in dict.fromkeys(gpu.failed_tests)]
        lines += [
            f"    DCGM {m['test']} [{m['status']}] error {m.get('errorId')} severity {m.get('severity')}: "
            f"{m['message']}"
            for m in gpu.dcgm
        ]
        lines += [f"    XID {x['xid']} ({x['name']}){_times(x)}: {x['line']}" for x in gpu.xids]
        lines += [f"    because {why}" for why in gpu.why]
    return "\n".join(lines)


def _times(xid: dict[str, Any]) -> str:
    count = int(xid.get("count") or 1)
    return f", logged {count} times" if count > 1 else ""


def _dcgm_version(text: str) -> str:
    if not re.fullmatch(r"\d+\.\d+(\.\d+)*", text):
        raise argparse.ArgumentTypeError(f"not a DCGM version: {text!r} (expected e.g. 4.2.3)")
    return text


def _instant(text: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r} (e.g. 2026-11-29T21:00:00Z)") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "diagnose",
        help="read a DCGM check's output (dcgmi JSON, the wrapper's envelope, or a log) and print the verdict",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="dcgmi JSON, a GPU_RECOVERY_RESULT line, or a log; - for stdin")
    parser.add_argument(
        "--exit-code",
        type=int,
        default=None,
        metavar="N",
        help="the check's exit code (default: dcgmiExitCode from the envelope; without either: INCONCLUSIVE)",
    )
    parser.add_argument(
        "--gpu-ids", default=None, metavar="UUID,...", help="the failed task's gpuIds, to say which GPUs it used"
    )
    parser.add_argument(
        "--dcgm-version",
        default=None,
        metavar="X.Y.Z",
        type=_dcgm_version,
        help="the DCGM version that produced FILE, when its output does not say (e.g. 4.2.3): picks the severity table",
    )
    parser.add_argument(
        "--since",
        default=None,
        metavar="ISO-8601",
        type=_instant,
        help="count only XIDs logged from this time on (e.g. the last GPU reset; default: since the last boot)",
    )
    parser.add_argument("--json", action="store_true", help="print status, action, gpus and reasons as JSON")
    parser.set_defaults(func=run)
