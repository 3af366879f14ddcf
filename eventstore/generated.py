"""Generated decoders of the store layer: `constructor` writes out, once per event class, the function that
builds it from a decoded payload, and `slot_setters` tells when its slots can be set without `__init__`.

Why generated: replaying a long log decodes millions of payloads, and a generic loop over the fields costs
about twice as much. The only generated code of `eventstore` lives here (`pipelines` has its own in
`pipelines/core/record_copies.py`); `codec.py` uses it.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from typing import Any

__all__ = ["constructor", "slot_setters"]


def constructor(
    cls: type, fields: list, decoders: dict[str, Callable[[Any], Any]], passthrough: dict[str, frozenset[type]],
    absent_marker: object
) -> Callable[[dict[str, Any]], Any]:
    """A function `payload -> cls(...)` written out for this class: one line per field, a value whose JSON
    type is already the field's type is taken as is, any other goes through the field's decoder (which
    converts it or raises), an absent field gets its default. Generated once per class because replaying a
    long log decodes millions of payloads and a generic loop over the fields costs about twice as much."""
    env: dict[str, Any] = {"cls": cls, "ABSENT": absent_marker}
    lines = ["def build(value):", "    get = value.get"]
    for i, f in enumerate(fields):
        env[f"decode{i}"] = decoders[f.name]
        kinds = passthrough[f.name]
        if not kinds:
            needs_decoder = "True"
        elif len(kinds) == 1:
            env[f"kind{i}"] = next(iter(kinds))
            needs_decoder = f"type(v{i}) is not kind{i}"
        else:
            env[f"kinds{i}"] = kinds
            needs_decoder = f"type(v{i}) not in kinds{i}"
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            if f.default is not dataclasses.MISSING:
                env[f"default{i}"] = f.default
                absent = f"default{i}"
            else:
                env[f"factory{i}"] = f.default_factory
                absent = f"factory{i}()"
            lines += [
                f"    v{i} = get({f.name!r}, ABSENT)",
                f"    if v{i} is ABSENT:",
                f"        v{i} = {absent}",
                f"    elif {needs_decoder}:",
                f"        v{i} = decode{i}(v{i})",
            ]
        else:  # required: the caller checked it is present
            lines += [
                f"    v{i} = value[{f.name!r}]",
                f"    if {needs_decoder}:",
                f"        v{i} = decode{i}(v{i})",
            ]
    setters = slot_setters(cls, fields)
    if setters is None:
        lines.append("    return cls(" + ", ".join(f"{f.name}=v{i}" for i, f in enumerate(fields)) + ")")
    else:  # what __init__ would do, without its call: one slot at a time
        env["new"] = object.__new__
        lines.append("    self = new(cls)")
        for i, setter in enumerate(setters):
            env[f"set{i}"] = setter
            lines.append(f"    set{i}(self, v{i})")
        lines.append("    return self")
    exec("\n".join(lines), env)  # noqa: S102 - source built above from the field names of a dataclass
    return env["build"]


def slot_setters(cls: type, fields: list) -> list[Callable[[Any, Any], None]] | None:
    """The slot setters of `cls`'s fields when its `__init__` does nothing but store them, else None.

    That holds for a frozen dataclass with slots, every field in `__init__`, no `__post_init__`, and an
    `__init__` that, given one distinct object per field, leaves exactly those objects in the slots (checked
    here, once per class): then `object.__new__` plus the slot descriptors build an equal instance about
    twice as fast, which matters for the nested records of a million events.
    """
    params = getattr(cls, "__dataclass_params__", None)
    all_fields = dataclasses.fields(cls)
    if (params is None or not params.init or not params.frozen or hasattr(cls, "__post_init__")
            or "__slots__" not in cls.__dict__ or len(all_fields) != len(fields)):
        return None
    descriptors = []
    for f in fields:
        owner = next((k for k in cls.__mro__ if f.name in k.__dict__), None)
        descriptor = owner.__dict__[f.name] if owner is not None else None
        if type(descriptor) is not types.MemberDescriptorType:
            return None
        descriptors.append(descriptor)
    probes = {f.name: object() for f in fields}
    try:
        probe = object.__new__(cls)
        cls.__init__(probe, **probes)
    except Exception:
        return None
    if any(d.__get__(probe, cls) is not probes[f.name] for d, f in zip(descriptors, fields, strict=True)):
        return None
    return [d.__set__ for d in descriptors]
