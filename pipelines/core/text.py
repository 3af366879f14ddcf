"""Text from files, the log or a user, shown as one printable line: the one rule for file names, block ids,
messages in events and what the terminal prints.

A name or a message can hold bytes that are not UTF-8 (Python gives them as lone surrogates, which the event
log cannot encode), terminal escape codes (colours, cursor moves), newlines (a fake line of output) or a
right-to-left override. Each such character is shown as an escape instead: `\\xNN`, `\\uNNNN`, `\\UNNNNNNNN`,
and a byte that was not UTF-8 as `\\xNN`. Stdlib only: the CLI imports it without loading pandas.

>>> print(printable("a11_\\udcff.csv\\x1b[31m\\nok"))
a11_\\xff.csv\\x1b[31m\\x0aok
"""

from __future__ import annotations

__all__ = ["escape_char", "printable"]


def escape_char(c: str, backslash: str = "\\") -> str:
    """One character as shown: itself if printable, else its escape. `backslash` is how `\\` itself shows
    (`"\\\\\\\\"` where an escape must always mean one, as in display names)."""
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's surrogate escape for the byte code - 0xDC00
        return f"\\x{code - 0xDC00:02x}"
    if c == "\\":
        return backslash
    if c.isprintable():
        return c
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(value: object) -> str:
    """`value` as one printable line: every character that is not printable as its escape (`escape_char`);
    text that is printable already comes back unchanged."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(escape_char(c) for c in text)
