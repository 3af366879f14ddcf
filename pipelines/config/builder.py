"""Build frozen settings dataclasses from TOML tables, with errors that name the key and what is allowed.

One generic builder serves every section (`[training]`, `[drift]`, `[retrain]`, ...): a section is a
frozen dataclass whose field types say what the TOML may hold. Unknown keys get a "did you mean" hint.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True, kw_only=True)
... class Demo:
...     alpha: float = 0.05
>>> build_settings(Demo, {"alpha": 0.01}, "demo").alpha
0.01
>>> build_settings(Demo, {"alfa": 0.01}, "demo")
Traceback (most recent call last):
...
pipelines.config.builder.SettingsError: demo.alfa: unknown key (did you mean 'alpha'?); allowed keys: alpha
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints


class SettingsError(ValueError):
    """A config value is wrong; `key` is its dotted path (e.g. "drift.alpha")."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.reason = message


def toml_key(field: dataclasses.Field) -> str:
    """The TOML spelling of a field (`metadata={"key": "class"}` for names Python reserves)."""
    return field.metadata.get("key", field.name)


def build_settings(cls: type, data: Any, path: str) -> Any:
    """Validate `data` (a TOML table) against dataclass `cls` and build it; raise SettingsError."""
    if not isinstance(data, dict):
        raise SettingsError(path, f"must be a table, got {describe(data)}")
    fields = {toml_key(f): f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise SettingsError(join(path, key), unknown_key_message(key, fields))
    hints = get_type_hints(cls)
    kwargs = {f.name: convert(hints[f.name], data[k], join(path, k)) for k, f in fields.items() if k in data}
    try:
        return cls(**kwargs)
    except SettingsError:
        raise
    except (TypeError, ValueError) as err:
        raise SettingsError(path, str(err)) from None


def unknown_key_message(key: str, allowed: typing.Iterable[str]) -> str:
    allowed = sorted(allowed)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key{hint}; allowed keys: {', '.join(allowed)}"


def join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def describe(value: Any) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)
    return f"{kind} ({value!r})" if not isinstance(value, (dict, list)) else kind


def convert(hint: Any, value: Any, path: str) -> Any:
    """Check `value` against type `hint`, converting lists to tuples and tables to dataclasses."""
    origin = get_origin(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return convert(option, value, path)
            except SettingsError as err:
                errors.append(err.reason)
        raise SettingsError(path, " or ".join(errors))
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            hint_text = f" (did you mean '{close[0]}'?)" if close else ""
            raise SettingsError(path, f"{value!r} is not allowed{hint_text}; allowed: "
                                      f"{', '.join(repr(c) for c in choices)}")
        return value
    if origin in (tuple, list):
        args = get_args(hint)
        if not isinstance(value, list):
            raise SettingsError(path, f"must be a list, got {describe(value)}")
        item = args[0] if args else Any
        items = [convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        key_type, value_type = get_args(hint) or (str, Any)
        if not isinstance(value, dict):
            raise SettingsError(path, f"must be a table, got {describe(value)}")
        return {str(k): convert(value_type, v, join(path, str(k))) for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return build_settings(hint, value, path)
    if hint is bool:
        if not isinstance(value, bool):
            raise SettingsError(path, f"must be true or false, got {describe(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(path, f"must be a whole number, got {describe(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(path, f"must be a number, got {describe(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise SettingsError(path, f"must be a string, got {describe(value)}")
        return value
    raise SettingsError(path, f"unsupported setting type {hint!r}")  # a programming error, said plainly


def settings_to_dict(obj: Any) -> Any:
    """The inverse of `build_settings`: plain TOML-like data (tuples become lists), keyed by TOML names."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {toml_key(f): settings_to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, (tuple, list)):
        return [settings_to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): settings_to_dict(v) for k, v in obj.items()}
    return obj
