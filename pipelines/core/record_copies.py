"""Generated copies of frozen slotted records: `replacer(cls)` (`dataclasses.replace` written out for one class),
`maker(cls)` (its constructor without `__init__`), `slot_setters(cls)` (a column at a time), and `dicts_of`
(records as dicts from columns, for snapshots).

Why: `evolve` copies the state's records on every event and `dataclasses.replace` costs about 3x more; the
generated functions give the same records (`tests/unit/test_state.py` checks them field by field). The only
generated code of the `pipelines` layer lives here (the store's decoders have theirs in `eventstore`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

__all__ = ["dicts_of", "maker", "replacer", "slot_setters"]

_UNSET = object()


def _check_plain(cls: type) -> list[dataclasses.Field]:
    """The fields of `cls`, after checking it is a frozen slotted dataclass with every field in `__init__` and
    no `__post_init__` (the state's records: their generated `__init__` only stores the fields)."""
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    fields = dataclasses.fields(cls)
    if not (params.frozen and "__slots__" in cls.__dict__) or hasattr(cls, "__post_init__") or any(
            not f.init for f in fields):
        raise TypeError(f"{cls.__qualname__}: fast copies need a frozen slots dataclass without "
                        "__post_init__ or init=False fields")
    return list(fields)


def slot_setters(cls: type) -> list[Callable[[Any, Any], None]]:
    """One setter per field of `cls`, in field order: `setter(record, value)` stores `value` in its slot, as
    `__init__` would. For building many records a column at a time (`snapshot.from_dict`)."""
    return [cls.__dict__[f.name].__set__ for f in _check_plain(cls)]


def replacer(cls: type) -> Callable[..., Any]:
    """`dataclasses.replace(obj, **changes)` written out for one record class: a new instance whose fields are
    the changes or `obj`'s values, each slot set straight through its descriptor.

    Why: `evolve` copies the 20-field state (and often its counters and a block record) on every event;
    `dataclasses.replace` builds a dict of every field and goes through `__init__`, about 3x slower. The result
    is the same (`__init__` of these classes only stores the fields); a name that is not a field is a
    TypeError, as with `dataclasses.replace`. `obj` must be an instance of exactly `cls`.

    >>> from pipelines.core.state import Counters
    >>> replacer(Counters)(Counters(blocks=2), drifts=1) == Counters(blocks=2, drifts=1)
    True
    """
    names = [f.name for f in _check_plain(cls)]
    env: dict[str, Any] = {"new": object.__new__, "cls": cls, "UNSET": _UNSET}
    lines = [f"def replace_{cls.__name__}(obj, *, " + ", ".join(f"{n}=UNSET" for n in names) + "):",
             "    self = new(cls)"]
    for i, n in enumerate(names):
        env[f"set{i}"] = cls.__dict__[n].__set__
        lines.append(f"    set{i}(self, obj.{n} if {n} is UNSET else {n})")
    lines.append("    return self")
    exec("\n".join(lines), env)  # noqa: S102 - source built above from the field names of a dataclass
    return env[f"replace_{cls.__name__}"]


def maker(cls: type) -> Callable[..., Any]:
    """`cls(...)` written out without `__init__`: the same arguments (positional or by name) and defaults,
    each slot set straight through its descriptor. For the records `evolve` builds (a block per
    `BlockArrived`, a model per `CandidateTrained`); the result equals `cls(...)` with the same arguments.

    >>> from pipelines.core.state import Circuit
    >>> maker(Circuit)(True, until="t") == Circuit(True, until="t")
    True
    """
    fields = _check_plain(cls)
    env: dict[str, Any] = {"new": object.__new__, "cls": cls, "UNSET": _UNSET}
    params, body = [], ["    self = new(cls)"]
    for i, f in enumerate(fields):
        env[f"set{i}"] = cls.__dict__[f.name].__set__
        value = f.name
        if f.default is not dataclasses.MISSING:
            env[f"default{i}"] = f.default
            params.append(f"{f.name}=default{i}")
        elif f.default_factory is not dataclasses.MISSING:
            env[f"factory{i}"] = f.default_factory
            params.append(f"{f.name}=UNSET")
            value = f"factory{i}() if {f.name} is UNSET else {f.name}"
        else:
            params.append(f.name)
        body.append(f"    set{i}(self, {value})")
    lines = [f"def make_{cls.__name__}(" + ", ".join(params) + "):", *body, "    return self"]
    exec("\n".join(lines), env)  # noqa: S102 - source built above from the field names of a dataclass
    return env[f"make_{cls.__name__}"]


@functools.lru_cache(maxsize=64)
def dicts_of(names: tuple[str, ...]) -> Any:
    """A function `(column, column, ...) -> [{names[0]: v0, names[1]: v1, ...}, ...]` with the key names
    written into a dict display: about 2.5x faster than `dict(zip(names, values))` per record."""
    if len(set(names)) != len(names) or any(type(n) is not str for n in names):
        raise ValueError(f"snapshot metric names must be distinct strings, got {list(names)!r:.80}")
    args = ", ".join(f"c{i}" for i in range(len(names)))
    display = ", ".join(f"{n!r}: v{i}" for i, n in enumerate(names))
    values = ", ".join(f"v{i}" for i in range(len(names)))
    source = f"def dicts({args}):\n    return [{{{display}}} for {values}, in zip({args}, strict=True)]"
    env: dict[str, Any] = {}
    exec(source, env)  # noqa: S102 - key names are repr()s of str, the rest is fixed text
    return env["dicts"]
