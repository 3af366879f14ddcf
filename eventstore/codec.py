"""Codec: event dataclasses <-> (stable type name, schema version, JSON payload), with upcasters.

Events are ``@dataclass(frozen=True, kw_only=True, slots=True)`` classes whose fields are
JSON-able: str, int, float, bool, None, ``tuple[X, ...]``, ``tuple[A, B]``, ``list[X]``, ``X | None`` (and
other unions), ``typing.Literal``, ``dict[str, X]`` (plain JSON objects, ``Any`` values allowed) and nested
frozen dataclasses. The stored name is the class name unless given; the schema version is the class
attribute ``SCHEMA_VERSION`` (a ``ClassVar[int]``, default 1). An event stored with an older schema version
is passed through upcasters ``v -> v+1`` (plain ``dict -> dict`` functions) until it reaches the class's
version, then rebuilt from the type hints.

``decode`` takes a record whose payload is already a dict; ``decode_stored`` takes one whose payload is still
the stored JSON text and, where the classes allow it, parses the text straight into them with msgspec (a long
replay spends most of its time there).

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True, kw_only=True, slots=True)
... class Point:
...     x: float
...     y: float
>>> @dataclass(frozen=True, kw_only=True, slots=True)
... class Moved:
...     path: tuple[Point, ...]
...     note: str | None = None
>>> codec = Codec([Moved])
>>> data = codec.encode(Moved(path=(Point(x=0.0, y=1.5),)))
>>> data
EventData(type='Moved', payload={'path': [{'x': 0.0, 'y': 1.5}], 'note': None}, schema_version=1)
>>> codec.decode(data)
Moved(path=(Point(x=0.0, y=1.5),), note=None)
"""

import contextlib
import copy
import dataclasses
import json
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

from eventstore.errors import CorruptLogError, StoreError
from eventstore.generated import constructor, slot_setters
from eventstore.records import EventData, Recorded, Stored

__all__ = ["Codec", "Upcaster"]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
_Decoder = Callable[[Any], Any]
_NoneType = type(None)


class _DecodeError(Exception):
    """A payload value does not fit its type hint; ``path`` grows as the error unwinds."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []

    def where(self) -> str:
        return "payload" + "".join(self.path)


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    cls: type
    name: str
    version: int
    decode: _Decoder


class Codec:
    """Maps event classes to stable type names and back; see the module docstring for the field rules."""

    def __init__(
        self, types: Iterable[type] = (), upcasters: Mapping[tuple[str, int], Upcaster] | None = None
    ) -> None:
        self._by_name: dict[str, _Entry] = {}
        self._by_cls: dict[type, _Entry] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._decoders: dict[Any, _Decoder] = {}
        self._fields: dict[type, tuple[str, ...]] = {}
        self._text_decoders: dict[str, Callable[[str | bytes], Any] | None] = {}  # type name -> msgspec's
        for cls in types:
            self.register(cls)
        for (type_name, from_version), fn in (upcasters or {}).items():
            self.register_upcaster(type_name, from_version, fn)

    # -- registration ---------------------------------------------------------------------------------

    def register(self, cls: type, name: str | None = None) -> type:
        """Register an event class under ``name`` (default ``cls.__name__``); returns ``cls`` (decorator-friendly).

        Raises TypeError when the class is not a frozen dataclass or a field's type is not JSON-able, and
        ValueError when the name or class is already taken by another registration.
        """
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise TypeError(
                f"{cls!r} is not a dataclass: events are @dataclass(frozen=True, kw_only=True, slots=True)"
            )
        if not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            raise TypeError(
                f"{cls.__qualname__} is not frozen: events are immutable facts, use @dataclass(frozen=True, ...)"
            )
        name = cls.__name__ if name is None else name
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"the stored type name of {cls.__qualname__} must be a non-empty string, got {name!r}"
            )
        version = getattr(cls, "SCHEMA_VERSION", 1)
        if type(version) is not int or version < 1:
            raise TypeError(f"{cls.__qualname__}.SCHEMA_VERSION must be an int >= 1, got {version!r}")
        taken = self._by_name.get(name)
        if taken is not None and taken.cls is not cls:
            raise ValueError(
                f"type name {name!r} is already registered for {taken.cls.__module__}.{taken.cls.__qualname__}"
            )
        known = self._by_cls.get(cls)
        if known is not None and known.name != name:
            raise ValueError(f"{cls.__qualname__} is already registered as {known.name!r}")
        entry = _Entry(cls=cls, name=name, version=version, decode=self._decoder(cls, cls.__qualname__))
        self._text_decoders.pop(name, None)
        self._by_name[name] = entry
        self._by_cls[cls] = entry
        return cls

    def register_upcaster(self, type_name: str, from_version: int, fn: Upcaster) -> None:
        """Register ``fn`` to turn a ``type_name`` payload of ``from_version`` into ``from_version + 1``."""
        if type(from_version) is not int or from_version < 1:
            raise ValueError(f"from_version must be an int >= 1, got {from_version!r}")
        if not callable(fn):
            raise TypeError(f"the upcaster for {type_name} v{from_version} is not callable: {fn!r}")
        key = (type_name, from_version)
        if key in self._upcasters and self._upcasters[key] is not fn:
            raise ValueError(
                f"an upcaster for {type_name} v{from_version} -> v{from_version + 1} is already registered"
            )
        self._upcasters[key] = fn

    def names(self) -> list[str]:
        """The registered type names, sorted."""
        return sorted(self._by_name)

    def __contains__(self, item: object) -> bool:
        return item in self._by_name or item in self._by_cls

    # -- encode / decode ------------------------------------------------------------------------------

    def encode(self, event: Any) -> EventData:
        """Turn a registered event instance into :class:`EventData` (dataclasses -> dicts, tuples -> lists)."""
        entry = self._by_cls.get(type(event))
        if entry is None:
            raise StoreError(
                f"{type(event).__qualname__} is not registered in the codec: "
                f"call codec.register({type(event).__name__}) first"
            )
        return EventData(
            type=entry.name, payload=self._encode_value(event, entry.name), schema_version=entry.version
        )

    def decode(self, recorded: Any) -> Any:
        """Rebuild the event instance from a :class:`Recorded` (or :class:`EventData`), upcasting old versions.

        Raises CorruptLogError naming the position and type when the type is unknown, an upcaster is
        missing or fails, or the payload does not fit the class.
        """
        entry = self._by_name.get(recorded.type)
        if entry is not None and recorded.schema_version == entry.version:  # the common case, kept short
            try:
                return entry.decode(recorded.payload)
            except Exception:  # noqa: S110 - decoded again below, where the problem is named
                pass
        return self._decode_in_full(recorded)

    def decode_stored(self, stored: Stored) -> Any:
        """Rebuild the event from a record whose payload is still its stored JSON text (a :class:`Stored`).

        The same event as ``decode`` of the parsed payload, and the same errors, only faster: when the record
        has its class's schema version and every class among its fields is a plain frozen slotted dataclass
        (see ``_fits_msgspec``), msgspec parses the text straight into the dataclasses, with no dict in
        between. Whatever msgspec refuses, an older schema version, or a class msgspec is not used for goes
        through ``decode``, whose messages name the position and field.

        One difference, by design: a key the class has no field for is ignored here (msgspec's rule for
        dataclasses), where ``decode`` refuses it. Such a record was written by code whose class had that
        field under the same schema version; ``verify`` proves the log is as it was written.
        """
        name = stored.type
        fast = self._text_decoders.get(name, _ABSENT)
        if fast is _ABSENT:
            fast = self._text_decoder(name)
        if fast is not None and stored.schema_version == self._by_name[name].version:
            try:
                return fast(stored.payload_json)
            except (msgspec.ValidationError, msgspec.DecodeError):
                pass  # decoded again below, where the problem is named
        text, position = stored.payload_json, stored.position
        try:
            payload = json.loads(text)
        except (ValueError, TypeError) as exc:
            raise CorruptLogError(f"position {position}: payload is not JSON ({exc}); run verify() and restore "
                                  "the log from a backup") from None
        if type(payload) is not dict:
            raise CorruptLogError(f"position {position}: payload is not a JSON object; run verify() and "
                                  "restore the log from a backup")
        return self.decode(Recorded(position, stored.stream_id, stored.version, name, stored.schema_version,
                                    payload, stored.recorded_at, stored.hash))

    def _text_decoder(self, name: str) -> Callable[[str | bytes], Any] | None:
        entry = self._by_name.get(name)
        decoder = None
        if entry is not None and _fits_msgspec(entry.cls, set()):
            with contextlib.suppress(TypeError):  # a type msgspec does not take: decode's way then
                decoder = msgspec.json.Decoder(entry.cls).decode
        self._text_decoders[name] = decoder
        return decoder

    def _decode_in_full(self, recorded: Any) -> Any:
        type_name, version, payload = recorded.type, recorded.schema_version, recorded.payload
        position = getattr(recorded, "position", None)
        where = f"position {position}" if position is not None else "unrecorded event"
        entry = self._by_name.get(type_name)
        if entry is None:
            raise CorruptLogError(
                f"{where}: unknown event type {type_name!r} (schema v{version}); register its "
                f"class with Codec.register, or this log was written by newer code"
            )
        if version > entry.version:
            raise CorruptLogError(
                f"{where}: {type_name} has schema v{version} but the code knows only up to "
                f"v{entry.version}; this log was written by newer code, upgrade calmops"
            )
        if version < entry.version:
            payload = copy.deepcopy(payload)
        while version < entry.version:
            fn = self._upcasters.get((type_name, version))
            if fn is None:
                raise CorruptLogError(
                    f"{where}: no upcaster for {type_name} v{version} -> v{version + 1}; "
                    f"register one with Codec.register_upcaster({type_name!r}, {version}, fn)"
                )
            try:
                payload = fn(payload)
            except Exception as exc:
                raise CorruptLogError(
                    f"{where}: upcaster {type_name} v{version} -> v{version + 1} failed: {exc!r}"
                ) from exc
            if not isinstance(payload, dict):
                raise CorruptLogError(
                    f"{where}: upcaster {type_name} v{version} -> v{version + 1} returned "
                    f"{type(payload).__name__}, not a dict"
                )
            version += 1
        try:
            return entry.decode(payload)
        except _DecodeError as exc:
            raise CorruptLogError(
                f"{where}: {type_name} v{recorded.schema_version} payload does not decode: "
                f"{exc.where()}: {exc.message}"
            ) from None
        except Exception as exc:  # a __post_init__ check, for instance
            raise CorruptLogError(
                f"{where}: {type_name} v{recorded.schema_version} payload does not decode: {exc!r}"
            ) from exc

    # -- internals ------------------------------------------------------------------------------------

    def _encode_value(self, value: Any, where: str) -> Any:
        if value is None or isinstance(value, str | int | float):  # bool is an int
            return value
        names = self._fields.get(type(value))
        if names is None and dataclasses.is_dataclass(value) and not isinstance(value, type):
            names = tuple(f.name for f in dataclasses.fields(value) if f.init)
            self._fields[type(value)] = names
        if names is not None:
            return {n: self._encode_value(getattr(value, n), f"{where}.{n}") for n in names}
        if isinstance(value, tuple | list):
            return [self._encode_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, dict):
            for k in value:
                if not isinstance(k, str):
                    raise StoreError(
                        f"{where} has a key {k!r} ({type(k).__name__}); JSON object keys must be str"
                    )
            return {k: self._encode_value(v, f"{where}[{k!r}]") for k, v in value.items()}
        raise StoreError(
            f"{where} is a {type(value).__name__} ({value!r:.60}), which the codec cannot store as JSON"
        )

    def _decoder(self, hint: Any, owner: str) -> _Decoder:
        # `int | float == float | int` (unions compare as sets) but they decode 1 differently: the key keeps
        # the order; classes are their own key (a dataclass's placeholder is stored under the class)
        key = hint if isinstance(hint, type) else (hint, repr(hint))
        try:
            cached = self._decoders.get(key)
        except TypeError:  # an unhashable hint
            cached = None
        if cached is not None:
            return cached
        decoder = self._build(hint, owner)
        with contextlib.suppress(TypeError):
            self._decoders[key] = decoder
        return decoder

    def _build(self, hint: Any, owner: str) -> _Decoder:  # noqa: C901 - one branch per supported hint
        if hint is Any or hint is object:
            return _identity
        if hint is None or hint is _NoneType:
            return _exact(_NoneType, "null")
        if hint is bool:
            return _exact(bool, "a boolean")
        if hint is int:
            return _int
        if hint is float:
            return _float
        if hint is str:
            return _exact(str, "a string")
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            return self._dataclass_decoder(hint)
        origin, args = typing.get_origin(hint), typing.get_args(hint)
        if origin is typing.Literal:
            return _literal(args)
        if origin is typing.Union or origin is types.UnionType:
            others = [a for a in args if a is not _NoneType]
            if (
                len(others) == 1 and len(args) == 2
            ):  # `X | None`: test for None first, no exception on the way
                return _optional(self._decoder(others[0], owner), hint)
            return _union([self._decoder(a, owner) for a in args], hint)
        if hint is tuple or hint is list or hint is dict:
            return _exact(dict, "an object") if hint is dict else _sequence(hint, _identity)
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                return _sequence(tuple, self._decoder(args[0], owner), _passthrough(args[0]))
            if args == ((),):
                args = ()
            return _fixed_tuple([self._decoder(a, owner) for a in args])
        if origin is list:
            return _sequence(list, self._decoder(args[0], owner) if args else _identity,
                             _passthrough(args[0]) if args else frozenset())
        if origin is dict:
            if args and args[0] is not str:
                raise TypeError(f"{owner}: dict keys must be str (JSON objects), got {hint!r}")
            return _mapping(self._decoder(args[1], owner) if args else _identity,
                            _passthrough(args[1]) if args else frozenset())
        raise TypeError(
            f"{owner}: the codec cannot store a field of type {hint!r}; use str, int, float, bool, "
            f"None, tuple, list, dict[str, ...], Literal, unions or nested frozen dataclasses"
        )

    def _dataclass_decoder(self, cls: type) -> _Decoder:
        cell: list[_Decoder] = []
        self._decoders[cls] = lambda value: cell[0](value)  # placeholder: lets a class refer to itself
        try:
            hints = typing.get_type_hints(cls)
        except Exception as exc:
            del self._decoders[cls]
            raise TypeError(f"cannot resolve the type hints of {cls.__qualname__}: {exc}") from exc
        fields = [f for f in dataclasses.fields(cls) if f.init]
        try:
            decoders = {f.name: self._decoder(hints[f.name], f"{cls.__qualname__}.{f.name}") for f in fields}
        except BaseException:
            del self._decoders[cls]
            raise
        required = frozenset(
            f.name
            for f in fields
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        )
        names = frozenset(decoders)
        cls_name = cls.__qualname__
        # values whose JSON type already is the field's Python type pass through without a decoder call
        passthrough = {f.name: _passthrough(hints[f.name]) for f in fields}

        build = constructor(cls, fields, decoders, passthrough, _ABSENT)

        def decode(value: Any) -> Any:
            if type(value) is not dict:
                raise _DecodeError(f"expected an object for {cls_name}, got {_json_kind(value)}")
            keys = value.keys()
            if not keys <= names:
                raise _DecodeError(f"unexpected field(s) {sorted(keys - names)} for {cls_name}")
            if not required <= keys:
                raise _DecodeError(f"missing field(s) {sorted(required - keys)} for {cls_name}")
            try:  # the fast path; on a bad value, walk again to name the field
                return build(value)
            except _DecodeError:
                for key, item in value.items():
                    try:
                        decoders[key](item)
                    except _DecodeError as exc:
                        exc.path.insert(0, f".{key}")
                        raise
                raise

        cell.append(decode)
        self._decoders[cls] = decode
        return decode


_SCALARS = (str, int, float, bool)
_ABSENT: Any = object()


def _fits_msgspec(hint: Any, seen: set[type]) -> bool:
    """Whether msgspec decodes JSON into `hint` exactly as the codec's own decoders do.

    True for the scalars, `Any`, `Literal`s of strings or ints, `X | None`, unions of distinct scalars that
    do not mix int with float (the codec tries the arms in order, so `float | int` makes 1 a float), tuples,
    lists, `dict[str, X]`, and plain frozen slotted dataclasses of those (no `__post_init__`, every field in
    `__init__`, an `__init__` that only stores them: msgspec fills the slots without calling `__init__`).
    """
    if hint is Any or hint in _SCALARS or hint is None or hint is _NoneType:
        return True
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if hint in seen:
            return True
        fields = list(dataclasses.fields(hint))
        if slot_setters(hint, fields) is None:
            return False
        seen.add(hint)
        try:
            hints = typing.get_type_hints(hint)
        except Exception:
            return False
        return all(_fits_msgspec(hints[f.name], seen) for f in fields)
    if hint is tuple or hint is list or hint is dict:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return all(type(a) in (str, int) for a in args)
    if origin is typing.Union or origin is types.UnionType:
        others = [a for a in args if a is not _NoneType]
        if len(others) == 1:
            return _fits_msgspec(others[0], seen)
        return all(a in _SCALARS for a in others) and not (int in others and float in others)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _fits_msgspec(args[0], seen)
        return bool(args) and args != ((),) and all(_fits_msgspec(a, seen) for a in args)
    if origin is list:
        return all(_fits_msgspec(a, seen) for a in args)
    if origin is dict:
        return (not args or args[0] is str) and all(_fits_msgspec(a, seen) for a in args[1:])
    return False


def _passthrough(hint: Any) -> frozenset[type]:
    """The value types a field of type `hint` takes from JSON unchanged (what its decoder returns as is)."""
    if hint is None or hint is _NoneType:
        return frozenset({_NoneType})
    if hint in _SCALARS:
        return frozenset({hint})
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if (origin is typing.Union or origin is types.UnionType) and all(
        a is _NoneType or a in _SCALARS for a in args
    ):
        kept = set(args)
        if float in args and (int not in args or args.index(float) < args.index(int)):
            kept.discard(int)  # the float arm takes an int first and turns it into a float
        return frozenset(kept)
    return frozenset()


def _json_kind(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        _NoneType: "null",
    }.get(type(value), type(value).__name__)


def _identity(value: Any) -> Any:
    return value


def _exact(kind: type, label: str) -> _Decoder:
    def decode(value: Any) -> Any:
        if type(value) is not kind:
            raise _DecodeError(f"expected {label}, got {_json_kind(value)}")
        return value

    return decode


def _int(value: Any) -> int:
    if type(value) is not int:
        raise _DecodeError(f"expected an integer, got {_json_kind(value)}")
    return value


def _float(value: Any) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise _DecodeError(f"expected a number, got {_json_kind(value)}")


def _literal(options: tuple[Any, ...]) -> _Decoder:
    def decode(value: Any) -> Any:
        for option in options:
            if type(value) is type(option) and value == option:
                return option
        raise _DecodeError(f"expected one of {list(options)!r}, got {value!r:.60}")

    return decode


def _optional(arm: _Decoder, hint: Any) -> _Decoder:
    """`X | None`: the same answers and errors as `_union([X, None])`, without raising on the way to None."""

    def decode(value: Any) -> Any:
        if value is None:
            return None
        try:
            return arm(value)
        except _DecodeError:
            raise _DecodeError(f"{_json_kind(value)} {value!r:.60} fits none of {hint!r}") from None

    return decode


def _union(arms: list[_Decoder], hint: Any) -> _Decoder:
    def decode(value: Any) -> Any:
        for arm in arms:
            try:
                return arm(value)
            except _DecodeError:
                continue
        raise _DecodeError(f"{_json_kind(value)} {value!r:.60} fits none of {hint!r}")

    return decode


def _sequence(kind: type, item: _Decoder, passthrough: frozenset[type] = frozenset()) -> _Decoder:
    """`tuple[X, ...]` / `list[X]`. Elements whose JSON type already is X's (`passthrough`) are taken in one
    pass; otherwise each goes through `item`, in one pass too, and only on an error is the list walked again
    to name the bad element."""
    every = item is _identity

    def decode(value: Any) -> Any:
        if type(value) is not list:
            raise _DecodeError(f"expected an array, got {_json_kind(value)}")
        if every or (passthrough and passthrough.issuperset(map(type, value))):
            return kind(value)
        try:
            out = list(map(item, value))
        except _DecodeError:
            return slow(value)
        return tuple(out) if kind is tuple else out

    slow = _sequence_slow(kind, item)
    return decode


def _sequence_slow(kind: type, item: _Decoder) -> _Decoder:
    def decode(value: Any) -> Any:
        if type(value) is not list:
            raise _DecodeError(f"expected an array, got {_json_kind(value)}")
        out = []
        for i, element in enumerate(value):
            try:
                out.append(item(element))
            except _DecodeError as exc:
                exc.path.insert(0, f"[{i}]")
                raise
        return kind(out) if kind is tuple else out

    return decode


def _fixed_tuple(items: list[_Decoder]) -> _Decoder:
    def decode(value: Any) -> Any:
        if type(value) is not list or len(value) != len(items):
            raise _DecodeError(
                f"expected an array of {len(items)}, got {_json_kind(value)}"
                + (f" of {len(value)}" if type(value) is list else "")
            )
        out = []
        for i, (element, item) in enumerate(zip(value, items, strict=True)):
            try:
                out.append(item(element))
            except _DecodeError as exc:
                exc.path.insert(0, f"[{i}]")
                raise
        return tuple(out)

    return decode


def _mapping(item: _Decoder, passthrough: frozenset[type] = frozenset()) -> _Decoder:
    """`dict[str, X]`: a copy taken in one pass when every value's JSON type already is X's (`passthrough`)."""
    every = item is _identity

    def decode(value: Any) -> Any:
        if type(value) is not dict:
            raise _DecodeError(f"expected an object, got {_json_kind(value)}")
        if every or (passthrough and passthrough.issuperset(map(type, value.values()))):
            return dict(value)
        out = {}
        for key, element in value.items():
            try:
                out[key] = item(element)
            except _DecodeError as exc:
                exc.path.insert(0, f"[{key!r}]")
                raise
        return out

    return decode
