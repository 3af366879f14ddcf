"""Canonical JSON: the one byte-exact spelling of a JSON value, so hashes are reproducible anywhere.

Keys sorted, no whitespace, UTF-8 (not ``\\u`` escapes), and NaN/Infinity refused (they are not JSON).
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["canonical_json", "canonical_payload", "json_problem"]

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_encode = _ENCODER.encode


def canonical_json(obj: Any) -> str:
    """Serialise ``obj`` the one canonical way; hash ``canonical_json(x).encode("utf-8")``.

    >>> canonical_json({"b": 1, "a": [1.5, None, "é"]})
    '{"a":[1.5,null,"é"],"b":1}'
    """
    return _encode(obj)


def canonical_payload(value: Any, path: str = "payload") -> tuple[str, Any]:
    """``(canonical_json(value), a fresh plain-JSON copy of value)``, or ValueError saying what and where.

    The copy has lists for tuples and shares nothing with ``value``: it is exactly what reading the text
    back gives. The fast path copies while checking keys (``json.dumps`` would silently turn non-str keys
    into strings) and lets the C encoder refuse NaN and foreign types; the slow path names the field.

    >>> canonical_payload({"b": (1, 2), "a": None})
    ('{"a":null,"b":[1,2]}', {'b': [1, 2], 'a': None})
    >>> canonical_payload({"x": {2: "two"}})
    Traceback (most recent call last):
    ...
    ValueError: payload['x'] has a key 2 of type int; JSON keys must be str
    """
    try:
        copy = _plain_copy(value)
        text = _encode(copy)
        text.encode("utf-8")  # lone surrogates can be neither stored nor hashed
        return text, copy
    except (ValueError, TypeError, RecursionError):
        pass
    problem = json_problem(value, path)
    if problem is not None:
        raise ValueError(problem)
    text = _encode(value)  # subclasses of str/int/float (an IntEnum, say): JSON after all
    return text, json.loads(text)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain_copy(value: Any) -> Any:
    """A deep copy made of dict/list/scalars only; TypeError on anything else (the slow path explains)."""
    kind = type(value)
    if kind is dict:
        out = {}
        for key, sub in value.items():
            if type(key) is not str:
                raise TypeError(key)
            out[key] = sub if type(sub) in _SCALARS else _plain_copy(sub)
        return out
    if kind is list or kind is tuple:
        return [sub if type(sub) in _SCALARS else _plain_copy(sub) for sub in value]
    if kind in _SCALARS:
        return value
    raise TypeError(kind)


def json_problem(value: Any, path: str = "payload") -> str | None:
    """Describe the first thing in ``value`` that is not plain JSON (None when all is well).

    Plain JSON here: dicts with str keys, lists/tuples, str, int, finite float, bool, None. Strings must be
    encodable as UTF-8 (no lone surrogates).

    >>> json_problem({"scores": [0.1, float("nan")]})
    "payload['scores'][1] is nan, which JSON cannot hold"
    >>> json_problem({"ok": [1, "two", None]}) is None
    True
    """
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if item is None or isinstance(item, bool | int):
            continue
        if isinstance(item, str):
            if not _utf8_ok(item):
                return f"{where} is a string with an unpaired surrogate, which UTF-8 cannot encode"
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return f"{where} is {item!r}, which JSON cannot hold"
            continue
        if isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str):
                    return f"{where} has a key {key!r} of type {type(key).__name__}; JSON keys must be str"
                if not _utf8_ok(key):
                    return f"{where} has a key with an unpaired surrogate, which UTF-8 cannot encode"
                stack.append((sub, f"{where}[{key!r}]"))
            continue
        if isinstance(item, list | tuple):
            stack.extend((sub, f"{where}[{i}]") for i, sub in enumerate(item))
            continue
        return f"{where} is a {type(item).__name__} ({item!r:.60}), which is not JSON"
    return None


def _utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
