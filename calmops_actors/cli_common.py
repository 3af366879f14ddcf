"""Helpers shared by the CLI commands: the home option and plain-text tables."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from calmops_actors.errors import UserError
from pipelines.core.text import printable

if TYPE_CHECKING:
    from calmops_actors.home import Home


def default_home() -> Path:
    """The home folder: `$CALMOPS_HOME`, else `./calmops_home`."""
    return Path(os.environ.get("CALMOPS_HOME") or "calmops_home")


def add_home_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home", type=Path, default=None,
        help="home folder with the log, artifacts and projections (default: $CALMOPS_HOME or ./calmops_home)")


def resolve_home(args: argparse.Namespace) -> Path:
    return args.home if getattr(args, "home", None) else default_home()


def writable_home(path: Path) -> Home:
    """The home for a command that records (`run`, `serve`): created if missing and its log opened once here, so
    a home that is a file, on a read-only disk or otherwise unusable is a UserError before any actor starts."""
    from calmops_actors.home import Home
    from eventstore import StoreError

    home = Home(path.resolve())
    try:
        home.create().open_store().close()
    except (OSError, StoreError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise UserError(f"cannot use the home folder {home.root}: {reason}") from None
    return home


def terminal_text(value: object) -> str:
    """Text from files, the log or the command line as the terminal shows it: one printable line (escape codes,
    newlines and non-UTF-8 bytes as escapes; the rule is `pipelines.core.text.printable`)."""
    return printable(value)


def print_table(rows: Iterable[dict[str, Any]], columns: Sequence[str], out: TextIO) -> None:
    """A left-aligned text table; None shows as '-'; every cell is one printable line (`terminal_text`)."""
    rows = list(rows)
    cells = [[("-" if r.get(c) is None else terminal_text(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)), file=out)
