"""`gpu-recovery`: the operator command line. Exit codes: 0 ok, 1 the thing failed, 2 usage error."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gpu_recovery.commands import simulate

COMMANDS = (simulate,)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="gpu-recovery", description="ECS GPU Recovery operator tools.")
    commands = root.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
