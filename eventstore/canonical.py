"""Canonical JSON: the one byte-exact spelling of a JSON value, so hashes are reproducible anywhere.

Keys sorted, no whitespace, UTF-8 (not ``\\u`` escapes), and NaN/Infinity refused (they are not JSON).
"""

from __future__ import annotations

import json
import math
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

__all__ = ["canonical_json", "canonical_payload", "json_problem"]

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_encode = _ENCODER.encode


def _refuse(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# The same spelling as _encode, minus the Python-level set-up per call and the cycle check: only ever
# given the fresh, acyclic copies made by _plain_copy.
_c_encode = (
    c_make_encoder(None, _refuse, encode_basestring, None, ":", ",", True, False, False)
    if c_make_encoder is not None
    else None
)


def _encode_copy(copy: Any) -> str:
    return "".join(_c_encode(copy, 0)) if _c_encode is not None else _encode(copy)


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
        text = _encode_copy(copy)
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
    try:
        return _problem(value, path, set())
    except RecursionError:
        return f"{path} is nested too deeply to be stored as JSON"


def _problem(item: Any, where: str, ancestors: set[int]) -> str | None:
    if item is None or isinstance(item, bool | int):
        return None
    if isinstance(item, str):
        return (
            None
            if _utf8_ok(item)
            else f"{where} is a string with an unpaired surrogate, which UTF-8 cannot encode"
        )
    if isinstance(item, float):
        return None if math.isfinite(item) else f"{where} is {item!r}, which JSON cannot hold"
    if not isinstance(item, dict | list | tuple):
        return f"{where} is a {type(item).__name__} ({item!r:.60}), which is not JSON"
    if id(item) in ancestors:
        return f"{where} contains itself (a cycle), which JSON cannot hold"
    ancestors.add(id(item))
    try:
        if isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str):
                    return f"{where} has a key {key!r} of type {type(key).__name__}; JSON keys must be str"
                if not _utf8_ok(key):
                    return f"{where} has a key with an unpaired surrogate, which UTF-8 cannot encode"
                problem = _problem(sub, f"{where}[{key!r}]", ancestors)
                if problem:
                    return problem
        else:
            for i, sub in enumerate(item):
                problem = _problem(sub, f"{where}[{i}]", ancestors)
                if problem:
                    return problem
    finally:
        ancestors.discard(id(item))
    return None


def _utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
