"""The command line: `calmops COMMAND` / `python -m calmops_actors COMMAND`, each with `--help`.

Exit codes scripts can trust: 0 success, 1 a check failed (e.g. `verify` found tampering),
2 a usage or input error (message on stderr, no traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from calmops_actors.errors import UserError
from pipelines.core.text import escape_char

# Modules under calmops_actors.commands, in the order `--help` lists them. Only working commands go here.
COMMANDS: tuple[str, ...] = (
    "serve",
    "run",
    "init",
    "predict",
    "status",
    "replay",
    "events",
    "explain",
    "verify",
    "head",
    "audit",
    "export",
    "rollback",
    "resume",
    "generate",
    "inject",
    "alerts",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="calmops",
        description="Event-sourced MLOps: watch data blocks, detect drift, retrain, promote, explain.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"calmops_actors.commands.{name}").register(sub)
    return parser


class PrintableStream:
    """What a command prints, with every character a terminal would act on shown as an escape instead.

    Names, ids and messages come from files and from the log; a newer log escapes them when it records them
    (`pipelines.core.text`), but an older one, or a message quoting a user's input, may hold escape codes, a
    right-to-left override or bytes that are not UTF-8 (which would end the command with a traceback). Line
    breaks, tabs and the progress bar's carriage return pass through.
    """

    PASS = frozenset("\n\t\r")
    # colorama (imported by Ray) wraps the streams it finds, ours, and writes this colour reset to them at exit
    # on a terminal; we never colour anything, so it is dropped rather than shown as a stray `\x1b[0m`
    COLOUR_RESET = "\x1b[0m"

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        if text == self.COLOUR_RESET:
            return len(text)
        if not text.isprintable():
            text = "".join(c if c in self.PASS or c.isprintable() else escape_char(c) for c in text)
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    """The program: parse, run the command, return its exit code. Called as the program (`argv` None, from the
    `calmops` script or `python -m calmops_actors`), it also readies a quick exit (`exit_quickly`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    out, err_stream = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = PrintableStream(out), PrintableStream(err_stream)
    try:
        return run_command(args)
    finally:
        sys.stdout, sys.stderr = out, err_stream
        if argv is None:
            exit_quickly()


def exit_quickly() -> None:
    """The command is done and the process is about to end: move every object to the collector's permanent
    generation, so the interpreter's last collections skip them. With the numeric and ML stack loaded that last
    pass over millions of objects took seconds on a loaded machine; the memory goes back to the system at exit
    anyway. Exit handlers (Ray's shutdown, logging's flush) still run. Never in a process that goes on (tests call
    `main(argv)`, which skips this): frozen garbage would never be collected."""
    import gc

    gc.freeze()


def run_command(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `calmops ... | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
