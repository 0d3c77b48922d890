"""Domain events: frozen dataclasses, their JSON codec, their registry and the upcasters of old shapes.

Pure Python (no Django), so every app's domain layer can define events. An event class names itself
(`event_type`, by default the class name), its aggregate and its schema version (`event_version`). A stored
row of an older version is upgraded on load by the upcasters registered for its type, one version at a time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any, ClassVar

from fintech.money import Money


class EventSchemaError(Exception):
    """A stored event that no registered class or upcaster can read."""


_EVENT_TYPES: dict[str, type[DomainEvent]] = {}
_UPCASTERS: dict[tuple[str, int], Callable[[dict], dict]] = {}


@dataclasses.dataclass(frozen=True, kw_only=True)
class DomainEvent:
    """Base of every event. `occurred_at` lives in its own column, the other fields in event_data."""

    event_type: ClassVar[str]
    event_version: ClassVar[int] = 1
    aggregate_type: ClassVar[str] = ""

    occurred_at: dt.datetime

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.event_type = cls.__dict__.get("event_type", cls.__name__)
        if cls.event_type in _EVENT_TYPES and _EVENT_TYPES[cls.event_type] is not cls:
            existing = _EVENT_TYPES[cls.event_type]
            # Re-imports of the same module (autoreload) are fine; two classes claiming a name are not.
            if (existing.__module__, existing.__qualname__) != (cls.__module__, cls.__qualname__):
                raise TypeError(f"event type {cls.event_type!r} is already registered by {existing!r}")
        _EVENT_TYPES[cls.event_type] = cls

    def to_data(self) -> dict[str, Any]:
        return {name: _encode(getattr(self, name)) for name, _, _ in _data_fields(type(self))}

    @classmethod
    def from_data(cls, data: dict[str, Any], *, occurred_at: dt.datetime) -> DomainEvent:
        values = {}
        for name, required, decode in _data_fields(cls):
            if name in data:
                value = data[name]
                values[name] = None if value is None else decode(value)
            elif required:
                raise EventSchemaError(f"{cls.event_type} v{cls.event_version} needs field {name!r}")
        return cls(occurred_at=occurred_at, **values)


_FIELDS: dict[type, tuple[tuple[str, bool, Callable[[Any], Any]], ...]] = {}


def _data_fields(cls: type[DomainEvent]) -> tuple[tuple[str, bool, Callable[[Any], Any]], ...]:
    """(name, required, decoder) of each field kept in event_data; worked out once per class, since resolving
    type hints costs more than decoding the event itself."""
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = _FIELDS[cls] = _data_fields_of(cls)
    return fields


def _data_fields_of(cls: type[DomainEvent]) -> tuple[tuple[str, bool, Callable[[Any], Any]], ...]:
    hints = typing.get_type_hints(cls)
    return tuple(
        (
            field.name,
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING,
            _decoder(hints[field.name]),
        )
        for field in dataclasses.fields(cls)
        if field.name != "occurred_at"
    )


def upcaster(event_type: str, *, from_version: int) -> Callable[[Callable[[dict], dict]], Callable[[dict], dict]]:
    """Register a function turning event_data of `from_version` into the shape of `from_version + 1`."""

    def register(function: Callable[[dict], dict]) -> Callable[[dict], dict]:
        key = (event_type, from_version)
        if key in _UPCASTERS and _UPCASTERS[key] is not function:
            raise TypeError(f"an upcaster for {event_type} v{from_version} is already registered")
        _UPCASTERS[key] = function
        return function

    return register


def event_types() -> list[str]:
    """Every registered event type (those of the domain modules imported so far)."""
    return sorted(_EVENT_TYPES)


def event_class(event_type: str) -> type[DomainEvent]:
    try:
        return _EVENT_TYPES[event_type]
    except KeyError:
        raise EventSchemaError(f"unknown event type {event_type!r}") from None


def decode_event(event_type: str, event_version: int, data: dict[str, Any], *, occurred_at: dt.datetime) -> DomainEvent:
    """Rebuild an event from a stored row, upcasting old schema versions to the current one."""
    cls = event_class(event_type)
    if event_version > cls.event_version:
        raise EventSchemaError(f"{event_type} v{event_version} is newer than this code (v{cls.event_version})")
    while event_version < cls.event_version:
        try:
            data = _UPCASTERS[(event_type, event_version)](dict(data))
        except KeyError:
            raise EventSchemaError(f"no upcaster for {event_type} v{event_version}") from None
        event_version += 1
    return cls.from_data(data, occurred_at=occurred_at)


# Most fields are these: one type look-up, not the chain of isinstance checks below (every event appended).
_PLAIN = frozenset({str, int, bool, type(None)})


def _encode(value: Any) -> Any:
    if type(value) in _PLAIN:
        return value
    if isinstance(value, Money):
        return value.to_json()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float):
        raise TypeError("floats never go into an event")
    if isinstance(value, dict):
        return {key: _encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    return value


def _identity(value: Any) -> Any:
    return value


_DECODERS: dict[Any, Callable[[Any], Any]] = {
    Money: Money.from_json,
    uuid.UUID: uuid.UUID,
    dt.datetime: dt.datetime.fromisoformat,
    dt.date: dt.date.fromisoformat,
}


def _decoder(hint: Any) -> Callable[[Any], Any]:
    """How a JSON value becomes a field of type `hint` (None is handled by the caller)."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _decoder(options[0]) if len(options) == 1 else _identity
    if origin is tuple:
        return tuple
    return _DECODERS.get(hint, _identity)
