"""The docs and the `calmops init` template keep up with the code: every command, every key, every default.

The code is the one place each rule lives (the commands `build_parser` registers, the settings dataclasses
reachable from `PipelineConfig`, their defaults); these tests read the docs and the template and name what
they miss or misstate. No Ray.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import tomllib
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from calmops_actors.cli import build_parser
from calmops_actors.commands.init import template
from pipelines.config.pipeline import PipelineConfig

DOCS = Path(__file__).resolve().parents[2] / "docs"

# A table of tables keyed by the user's own names (`[drift.features.<feature>]`) is written with this
# placeholder, in the dotted keys here and in docs/config.md's headings.
NAME = "NAME"

# Keys the init template sets to an example on purpose, not to their default: key -> why.
TEMPLATE_EXAMPLES = {
    "model.params": "max_iter = 1000: LogisticRegression's own 100 iterations often stop before converging "
    "on unscaled numeric columns (the shared preprocessing imputes, it does not scale)",
}


# --- the code's side ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Key:
    """One config key: its dotted TOML name and its default (`required` when it has none)."""

    dotted: str
    default: Any
    required: bool = False


def toml_name(field: dataclasses.Field) -> str:
    return field.metadata.get("key", field.name)  # `class` is spelt `class_path` in Python


def config_keys(cls: type = PipelineConfig, prefix: str = "") -> Iterator[Key]:
    """Every leaf key of a settings dataclass, walking nested settings and tables of tables recursively.

    A dict whose values are settings (`drift.features`: one table per feature) is walked once with `NAME`
    for the user's key; a dict of plain values (`model.params`, `retrain.thresholds`) is one key.
    """
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        dotted = prefix + toml_name(field)
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            yield from config_keys(hint, dotted + ".")
            continue
        if typing.get_origin(hint) is dict and dataclasses.is_dataclass(typing.get_args(hint)[1]):
            yield from config_keys(typing.get_args(hint)[1], f"{dotted}.{NAME}.")
            continue
        if field.default is not dataclasses.MISSING:
            yield Key(dotted, field.default)
        elif field.default_factory is not dataclasses.MISSING:
            yield Key(dotted, field.default_factory())
        else:
            yield Key(dotted, None, required=True)


def commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


# --- the docs' side -----------------------------------------------------------------------------------


def sections(markdown: str) -> Iterator[tuple[str, list[str]]]:
    """(heading, its lines) for every `##`/`###` heading of a markdown page."""
    heading, lines = "", []
    for line in markdown.splitlines():
        match = re.match(r"#{2,3} (.+)", line)
        if match:
            yield heading, lines
            heading, lines = match.group(1).strip(), []
        else:
            lines.append(line)
    yield heading, lines


def first_cells(lines: list[str]) -> list[str]:
    """The first cell of every table row (header and separator rows included; callers filter)."""
    return [line.split("|")[1].strip() for line in lines if line.startswith("|") and line.count("|") >= 3]


def documented_config_keys(markdown: str) -> set[str]:
    """Dotted keys of docs/config.md: a row whose first cell is `` `key` `` in the section of its table.

    "Top-level keys" holds `name`, `target`, ...; a heading `` `[drift.multivariate]` `` holds that table's
    keys, which become `drift.multivariate.<key>`.
    """
    keys = set()
    for heading, lines in sections(markdown):
        table = re.fullmatch(r"`\[([\w.]+)\]`", heading)
        if heading != "Top-level keys" and not table:
            continue
        prefix = table.group(1) + "." if table else ""
        for cell in first_cells(lines):
            match = re.fullmatch(r"`(\w+)`", cell)
            if match:
                keys.add(prefix + match.group(1))
    return keys


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: `generate and inject` -> `generate-and-inject`."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def template_keys(text: str) -> dict[str, Any]:
    """Every key the init template shows, commented or not, as dotted key -> the value it states."""
    shown: dict[str, Any] = {}
    section = ""
    for line in text.splitlines():
        line = line.lstrip("# ").rstrip()
        if header := re.fullmatch(r"\[([\w.]+)\]\s*(#.*)?", line):
            section = header.group(1) + "."
        elif re.match(r"\w+\s*=", line):
            ((key, value),) = tomllib.loads(line).items()
            shown[section + key] = value
    return shown


def as_default(value: Any) -> Any:
    """A TOML value as the settings hold it: lists are tuples."""
    return tuple(as_default(v) for v in value) if isinstance(value, list) else value


# --- the rules ----------------------------------------------------------------------------------------


def test_every_cli_command_has_a_section_in_cli_md() -> None:
    headings = [heading for heading, _ in sections((DOCS / "cli.md").read_text(encoding="utf-8"))]
    # a heading names one command (`## status`) or several that share a section (`## generate and inject`)
    named = {name for heading in headings for name in re.split(r",\s*|\s+and\s+", heading)}
    missing = [name for name in commands() if name not in named]
    assert not missing, f"docs/cli.md has no `## NAME` section for {missing}"


def test_every_cli_command_is_in_the_command_table_of_cli_md_linked_to_its_section() -> None:
    markdown = (DOCS / "cli.md").read_text(encoding="utf-8")
    anchors = {slug(heading) for heading, _ in sections(markdown)}
    links = dict(re.findall(r"\[`([\w-]+)`\]\(#([\w-]+)\)", " ".join(first_cells(markdown.splitlines()))))
    missing = [name for name in commands() if name not in links]
    assert not missing, f"docs/cli.md's command table has no [`NAME`](#section) row for {missing}"
    dangling = {name: anchor for name, anchor in links.items() if anchor not in anchors}
    assert not dangling, f"docs/cli.md's command table links to sections that do not exist: {dangling}"


def test_every_config_key_is_documented_in_config_md() -> None:
    documented = documented_config_keys((DOCS / "config.md").read_text(encoding="utf-8"))
    missing = [key.dotted for key in config_keys() if key.dotted not in documented]
    assert not missing, (
        f"docs/config.md has no table row for {missing} (a `[section]` heading over a "
        f"table with the key in backticks; tables of tables as `[drift.features.{NAME}]`)"
    )


def test_config_md_documents_only_keys_the_config_has() -> None:
    documented = documented_config_keys((DOCS / "config.md").read_text(encoding="utf-8"))
    stale = sorted(documented - {key.dotted for key in config_keys()})
    assert not stale, f"docs/config.md documents keys no settings class has: {stale}"


def test_every_key_the_init_template_shows_states_its_default() -> None:
    keys = {key.dotted: key for key in config_keys()}
    shown = template_keys(template("churn"))
    assert shown, "found no `key = value` line in the init template"
    unknown = sorted(set(shown) - set(keys))
    assert not unknown, f"the init template shows keys the config does not have: {unknown}"
    wrong = {
        dotted: (value, keys[dotted].default)
        for dotted, value in shown.items()
        # required keys have no default, and a key unset by default (None) can only show an example
        if not keys[dotted].required
        and keys[dotted].default is not None
        and dotted not in TEMPLATE_EXAMPLES
        and as_default(value) != keys[dotted].default
    }
    assert not wrong, f"the init template states values that are not the defaults (shown, default): {wrong}"
