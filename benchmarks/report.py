"""The one table shape every benchmark reports in, and the code that writes it into `benchmarks/README.md`.

Why: the README's figures must come from a run anyone can repeat, so `python -m benchmarks` regenerates the
tables instead of someone copying numbers by hand. Each benchmark module keeps its own `main(argv)` (with
`--quick` and `--json PATH`) and adds `rows(results) -> list[Row]`, which turns the JSON it wrote into table
rows. The runner renders those rows between two markers per section; the prose around them stays
hand-written (what the figures say, and why a target is missed).

    >>> row = Row("append, 1 event per txn", "1.35x", "plain sqlite3", "<= 2x", met=True)
    >>> render([row]).splitlines()[2]
    '| append, 1 event per txn | 1.35x | plain sqlite3 | <= 2x: met |'
    >>> replace_section("a\\n<!-- results:x -->\\nold\\n<!-- /results:x -->\\nb", "x", "new")
    'a\\n<!-- results:x -->\\nnew\\n<!-- /results:x -->\\nb'
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One figure: what was measured, its value, the baseline it is judged against (same run), its target.

    `met` is True or False when there is a target, None when the figure is information only.
    """

    figure: str
    measured: str
    baseline: str = ""
    target: str = ""
    met: bool | None = None

    def verdict(self) -> str:
        if self.met is None:
            return self.target
        return f"{self.target}: {'met' if self.met else '**missed**'}"

    def as_dict(self) -> dict:
        return {"figure": self.figure, "measured": self.measured, "baseline": self.baseline,
                "target": self.target, "met": self.met}


def render(rows: list[Row]) -> str:
    """A Markdown table: figure | measured | baseline (same run) | target and verdict."""
    lines = ["| figure | measured | baseline, same run | target |", "|---|---|---|---|"]
    for row in rows:
        cells = [row.figure, row.measured, row.baseline, row.verdict()]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def _markers(key: str) -> tuple[str, str]:
    return f"<!-- results:{key} -->", f"<!-- /results:{key} -->"


def replace_section(text: str, key: str, body: str) -> str:
    """Put `body` between the markers of `key`; append a new marked block at the end when there is none."""
    start, end = _markers(key)
    pattern = re.compile(re.escape(start) + r"\n.*?" + re.escape(end), re.DOTALL)
    block = f"{start}\n{body}\n{end}"
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return text.rstrip("\n") + f"\n\n{block}\n"


def fmt_ratio(x: float) -> str:
    """
    >>> fmt_ratio(1.2345)
    '1.23x'
    """
    return f"{x:.2f}x"


def fmt_seconds(x: float) -> str:
    """
    >>> fmt_seconds(0.0123), fmt_seconds(2.5), fmt_seconds(125)
    ('12.3 ms', '2.50 s', '125 s')
    """
    if x < 1:
        return f"{x * 1000:.1f} ms"
    if x < 100:
        return f"{x:.2f} s"
    return f"{x:.0f} s"
