"""The `arface` command: one entry point, one subcommand per module in `arface_repro.commands`.

Each module there defines `register(subparsers)` which adds its parser and sets `func` (called with
the parsed namespace; returns an exit status or None). Modules are discovered, so adding a command
never touches this file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import arface_repro.commands as commands_pkg
from arface_repro import __version__
from arface_repro.backbones.registry import load_plugin
from arface_repro.errors import ArfaceError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="arface",
        description="Exact face-recognition evaluation protocols, checkpoints, and the ARFace trainer.",
    )
    parser.add_argument("--version", action="version", version=f"arface_repro {__version__}")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE first so that it can register model architectures (repeatable); "
                             "configs and model specs only name registered architectures, never import code")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    for info in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        # only this package's own command modules (its folder on disk); no file or config names a module here
        module = importlib.import_module(f"arface_repro.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.plugin:
            for module in args.plugin:
                load_plugin(module)
        status = args.func(args)
    except ArfaceError as exc:
        print(f"arface {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system refused (a folder given for a file, disk full, ...): not a bug
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"arface {args.command}: error: {where}{exc.strerror or _one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


def _one_line(exc: BaseException) -> str:
    """The message on one line (a message quoting file content may hold line breaks)."""
    text = str(exc)
    for ch in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029":
        text = text.replace(ch, " ")
    return text.strip() or type(exc).__name__


if __name__ == "__main__":
    raise SystemExit(main())
