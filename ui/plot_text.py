"""User text for Plotly figures, escaped so that it shows as typed instead of as markup.

Plotly renders a subset of HTML in every label it draws (axis ticks, titles, legend entries, hover labels,
annotations, text on marks): `<a href>` becomes a live link, `<b style="font-size:60px">` restyles the chart,
`<br>` breaks the line. It splits a label on tags first and only then decodes the HTML entities of the text
between them, so `&lt;`, `&gt;` and `&amp;` are drawn as `<`, `>` and `&` and never read as a tag. Column
names, block ids, model versions, metric names and reasons come from users' files and configs: each goes
through `plot_text` (or `plot_frame`, for the frames a figure is drawn from) before it reaches a figure.
Quotes need no escaping (Plotly only reads them inside a tag). Escaping is one-to-one, so two different block
ids stay two categories. The HTML tables are escaped where they are built (`ui.app._html_table`), not here.

>>> plot_text('<a href="https://evil.example/login">Session expired</a>')
'&lt;a href="https://evil.example/login"&gt;Session expired&lt;/a&gt;'
>>> plot_texts(["b&1", None, 2.5])
['b&amp;1', None, 2.5]
>>> plot_frame(pd.DataFrame({"feature": ["<b>x</b>"], "effect": [0.5]})).to_dict("records")
[{'feature': '&lt;b&gt;x&lt;/b&gt;', 'effect': 0.5}]
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

import pandas as pd

__all__ = ["plot_frame", "plot_text", "plot_texts"]


def plot_text(value: Any) -> Any:
    """`value` as literal Plotly text when it is a string; numbers, None and NaN pass unchanged."""
    return html.escape(value, quote=False) if isinstance(value, str) else value


def plot_texts(values: Iterable[Any]) -> list[Any]:
    """`plot_text` of each value (a column, an index, a list of categories)."""
    return [plot_text(v) for v in values]


def plot_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with every text cell escaped: a column a query adds later is covered too."""
    text = frame.select_dtypes(include=["object", "string"]).columns
    return frame.assign(**{str(c): frame[c].map(plot_text) for c in text}) if len(text) else frame
