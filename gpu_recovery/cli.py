"""`gpu-recovery`: the operator command line. Exit codes: 0 ok, 1 the thing failed, 2 usage error.

Only the command being run is imported: the others are listed from their module docstrings, so `--help` and
`--version` load neither boto3 nor moto (bench/ measures the start-up time).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import os
import pkgutil
import re
import sys
from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version

from gpu_recovery import commands

DISTRIBUTION = "ecs-gpu-recovery"
# Flags every command takes, before or after the command's name (`gpu-recovery --json runs` = `runs --json`).
GLOBAL_FLAGS: dict[str, dict[str, str]] = {
    "--region": {"help": "AWS region (default: the task ARN's for `start`, else boto3's settings, e.g. AWS_REGION)"},
    "--profile": {"help": "AWS profile (default: boto3's settings, e.g. AWS_PROFILE)"},
    "--json": {"action": "store_true", "help": "print one JSON document on stdout"},
}
_FLAGS_WITH_VALUE = frozenset(flag for flag, options in GLOBAL_FLAGS.items() if "action" not in options)
# A sentence's end: ".", "?" or ";" before a space or the end of the line.
_SENTENCE = re.compile(r"(.*?[.?;])(?:\s|$)")
EPILOG = "exit codes: 0 ok, 1 failed (not found, did not succeed, AWS error, no credentials), 2 usage error"


def _version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def command_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(commands.__path__))


def _summary(name: str) -> str:
    """The first sentence of a command module's docstring (after its "`gpu-recovery NAME`:"), read without
    importing the module. Only the first line is read (PEP 257: the summary line), cut at its first sentence's
    end: a line that wraps a longer sentence would otherwise end mid-sentence in `--help`."""
    spec = importlib.util.find_spec(f"{commands.__name__}.{name}")
    origin = spec.origin if spec else None
    with open(origin or "", encoding="utf-8") as source:
        docstring = ast.get_docstring(ast.parse(source.read())) or ""
    line = (docstring.splitlines() or [""])[0].split(":", 1)[-1].strip()
    sentence = _SENTENCE.match(line)
    return (sentence.group(1) if sentence else line).rstrip(".;")


def _chosen(argv: Sequence[str]) -> str | None:
    """The command named on the command line (the first word that is neither a flag nor a flag's value)."""
    words = iter(argv)
    for word in words:
        if word in _FLAGS_WITH_VALUE:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                yield sub
                yield from _subparsers(sub)


def _add_global_flags(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """On the top parser the flags have their defaults; on a command they default to SUPPRESS, so a flag given
    before the command name is not reset by the command's own default."""
    existing = {option: action for action in parser._actions for option in action.option_strings}
    for flag, options in GLOBAL_FLAGS.items():
        if flag in existing:
            existing[flag].default = argparse.SUPPRESS
            continue
        kwargs: dict[str, object] = dict(options)
        if not top:
            kwargs["default"] = argparse.SUPPRESS
        parser.add_argument(flag, **kwargs)  # type: ignore[arg-type]


def parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The command line parser for ``argv``: the chosen command fully, the others as one help line each."""
    root = argparse.ArgumentParser(prog="gpu-recovery", description="ECS GPU Recovery operator tools.", epilog=EPILOG)
    root.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_global_flags(root, top=True)
    subparsers = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = _chosen(argv)
    for name in command_names():
        if name == chosen:
            importlib.import_module(f"{commands.__name__}.{name}").register(subparsers)
        else:
            subparsers.add_parser(name, help=_summary(name))
    for sub in _subparsers(root):
        _add_global_flags(sub, top=False)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = parser(arguments).parse_args(arguments)
    try:
        return int(args.func(args))
    except BrokenPipeError:
        # The reader went away (`gpu-recovery ... | head`): stop quietly, as Unix tools do. Python's advice:
        # https://docs.python.org/3/library/signal.html#note-on-sigpipe
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
