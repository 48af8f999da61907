"""`gpu-recovery`: the operator command line. Exit codes: 0 ok, 1 the thing failed, 2 usage error."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from gpu_recovery import commands


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="gpu-recovery", description="ECS GPU Recovery operator tools.")
    subparsers = root.add_subparsers(dest="command", required=True)
    # Every module in gpu_recovery.commands is a command (see its package docstring).
    for module in sorted(m.name for m in pkgutil.iter_modules(commands.__path__)):
        importlib.import_module(f"{commands.__name__}.{module}").register(subparsers)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
