"""Domain events: the registry, the JSON codec and the upcasters (pure Python; the store's tests use them)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import FrozenInstanceError, dataclass

import pytest

from fintech.events import DomainEvent, EventSchemaError, decode_event, event_class, upcaster
from fintech.money import Money
from tests.fintech.helpers import KernelAmountRecorded, KernelEvent, KernelNoted, now


@dataclass(frozen=True, kw_only=True)
class KernelRenamed(KernelEvent):
    """v3: v1 said `name`, v2 `full_name`, v3 added `source`."""

    event_version = 3

    full_name: str
    source: str


@upcaster("KernelRenamed", from_version=1)
def _kernel_renamed_v1_to_v2(data: dict) -> dict:
    data["full_name"] = data.pop("name")
    return data


@upcaster("KernelRenamed", from_version=2)
def _kernel_renamed_v2_to_v3(data: dict) -> dict:
    data.setdefault("source", "migrated")
    return data


@dataclass(frozen=True, kw_only=True)
class KernelWithoutUpcaster(KernelEvent):
    event_version = 2

    value: int


def _amount_recorded() -> KernelAmountRecorded:
    return KernelAmountRecorded(
        occurred_at=now(),
        amount=Money(1234, "KWD"),
        reference=uuid.uuid4(),
        value_date=dt.date(2024, 2, 29),
        recorded_at=dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=dt.UTC),
        tags=("a", "b"),
        details={"nested": {"amount": 1}},
        counterparty=None,
    )


def test_subclass_registers_under_class_name():
    assert KernelNoted.event_type == "KernelNoted"
    assert event_class("KernelNoted") is KernelNoted
    assert KernelRenamed.event_version == 3
    assert KernelNoted.event_version == 1


def test_register_second_class_with_same_event_type_rejected():
    with pytest.raises(TypeError, match="already registered"):

        @dataclass(frozen=True, kw_only=True)
        class KernelNoted(DomainEvent):  # noqa: F811 - the clash is the point
            aggregate_type = "other"

    assert event_class("KernelNoted").__module__ == "tests.fintech.helpers"


def test_register_second_upcaster_for_same_version_rejected():
    with pytest.raises(TypeError, match="already registered"):
        upcaster("KernelRenamed", from_version=1)(lambda data: data)


def test_event_is_frozen():
    event = KernelNoted(occurred_at=now(), note="x")
    with pytest.raises(FrozenInstanceError):
        event.note = "y"  # type: ignore[misc]


def test_encode_then_decode_returns_equal_event():
    # given
    event = _amount_recorded()
    # when
    data = event.to_data()
    decoded = decode_event("KernelAmountRecorded", 1, data, occurred_at=event.occurred_at)
    # then
    assert "occurred_at" not in data
    assert data["amount"] == {"amount": 1234, "currency": "KWD"}
    assert data["reference"] == str(event.reference)
    assert data["value_date"] == "2024-02-29"
    assert data["tags"] == ["a", "b"]
    assert decoded == event


def test_encode_float_rejected():
    event = KernelAmountRecorded(
        occurred_at=now(),
        amount=Money(1, "USD"),
        reference=uuid.uuid4(),
        value_date=dt.date(2024, 1, 1),
        recorded_at=now(),
        details={"rate": 1.1},
    )
    with pytest.raises(TypeError, match="floats"):
        event.to_data()


def test_decode_v1_runs_every_upcaster_in_turn():
    # given the data of a v1 row
    occurred_at = now()
    # when
    event = decode_event("KernelRenamed", 1, {"name": "Ada"}, occurred_at=occurred_at)
    # then
    assert event == KernelRenamed(occurred_at=occurred_at, full_name="Ada", source="migrated")


def test_decode_v2_runs_only_later_upcasters():
    event = decode_event("KernelRenamed", 2, {"full_name": "Ada"}, occurred_at=now())
    assert (event.full_name, event.source) == ("Ada", "migrated")


def test_decode_current_version_runs_no_upcaster():
    event = decode_event("KernelRenamed", 3, {"full_name": "Ada", "source": "api"}, occurred_at=now())
    assert event.source == "api"


def test_decode_does_not_change_stored_data():
    data = {"name": "Ada"}
    decode_event("KernelRenamed", 1, data, occurred_at=now())
    assert data == {"name": "Ada"}


def test_decode_unknown_type_raises_schema_error():
    with pytest.raises(EventSchemaError, match="unknown event type"):
        decode_event("KernelNeverDefined", 1, {}, occurred_at=now())


def test_decode_newer_version_than_code_raises_schema_error():
    with pytest.raises(EventSchemaError, match="newer"):
        decode_event("KernelNoted", 2, {"note": "x"}, occurred_at=now())


def test_decode_old_version_without_upcaster_raises_schema_error():
    with pytest.raises(EventSchemaError, match="no upcaster"):
        decode_event("KernelWithoutUpcaster", 1, {"value": 1}, occurred_at=now())


def test_decode_missing_required_field_raises_schema_error():
    with pytest.raises(EventSchemaError, match="note"):
        decode_event("KernelNoted", 1, {}, occurred_at=now())


def test_decode_float_amount_rejected():
    data = _amount_recorded().to_data()
    data["amount"] = {"amount": 12.34, "currency": "KWD"}
    with pytest.raises(ValueError, match="integer"):
        decode_event("KernelAmountRecorded", 1, data, occurred_at=now())
