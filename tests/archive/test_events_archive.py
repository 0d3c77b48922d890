"""Payment events from hot to warm with real partitions: a month written 5 months back is archived (Parquet,
sealed, verified, the partition detached and dropped), and everything that reads events still reads it whole:
loading and refunding the payment, its events in the API, a projection replay. An altered archive is caught by
verify_archives and refused by restore_events; a restore puts the month back."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from accounts.services import api_token_issue
from archive import events as archive_events
from archive import reader
from archive.management.commands.archive_events import hot_boundary
from archive.models import ArchiveObject
from archive.store import archive_store
from fintech import eventstore, partitions
from fintech.db import raw_cursor
from fintech.models import Event
from fintech.money import Money
from payments import services as payments
from projections.models import PaymentView
from projections.services import projection_replay
from tests.archive.conftest import ACTOR, project_all
from tests.staff import staff_login

pytestmark = pytest.mark.django_db(transaction=True)


def _month_text(first) -> str:
    return f"{first:%Y-%m}"


def _next(first):
    return partitions.next_month(first)


def _archive(first) -> str:
    out = io.StringIO()
    call_command("archive_events", f"--month={_month_text(first)}", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _partition_rows(first) -> int:
    with raw_cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM fintech_event WHERE occurred_at >= %s AND occurred_at < %s", [first, _next(first)]
        )
        return cursor.fetchone()[0]


def test_archived_month_leaves_postgres_and_the_payment_still_loads_and_refunds(old_month, pay_in, client):
    # given a captured payment whose events were written 5 months back, projected
    first = old_month(5)
    payment = pay_in(first)
    before = [(e.version, e.event_type, e.event_id) for e in eventstore.load(payment.id)]
    assert [e[0] for e in before] == [1, 2, 3]
    project_all()
    rows = _partition_rows(first)
    # when its month is archived
    assert _archive(first) == f"{_month_text(first)}: archived, {rows} events\n"
    # then the partition is gone from PostgreSQL, and its object and manifest are in the store
    assert partitions.partition_name(first) not in partitions.existing_partitions()
    assert _partition_rows(first) == 0
    obj = ArchiveObject.objects.get(kind="events", period_start=first)
    assert (obj.state, obj.row_count, obj.tier) == ("archived", rows, "warm")
    assert archive_store().exists(obj.key)
    assert archive_store().exists(f"{obj.key}.manifest.json")
    # and the payment loads whole, from the archive, in version order
    assert [(e.version, e.event_type, e.event_id) for e in eventstore.load(payment.id)] == before
    # and refunds: its new event goes to this month, after the archived ones
    refunded = payments.payment_refund(payment_id=payment.id, amount=Money(1000, "JPY"), actor=ACTOR)
    assert refunded.version == 4
    assert [e.event_type for e in eventstore.load(payment.id)][-1] == "PaymentRefunded"


def test_the_archive_is_sealed_and_holds_no_plaintext(old_month, pay_in):
    first = old_month(6)
    payment = pay_in(first)
    project_all()
    _archive(first)
    obj = ArchiveObject.objects.get(kind="events", period_start=first)
    data = archive_store().get(obj.key)
    # the stored bytes name neither the payment nor its merchant: they are ciphertext
    assert str(payment.id).encode() not in data
    assert pay_in.merchant.encode() not in data
    assert b"PAR1" not in data[:4]
    # and the manifest says what it is, with the key id that wrapped its data key
    manifest = json.loads(archive_store().get(f"{obj.key}.manifest.json"))
    assert manifest["kind"] == "events"
    assert manifest["row_count"] == obj.row_count
    assert manifest["kek_key_id"] == obj.kek_key_id
    assert manifest["sha256_object"] == obj.sha256_object
    assert manifest["period"][0] == first.isoformat()


def test_replay_reads_archived_events(old_month, pay_in):
    first = old_month(7)
    payment = pay_in(first)
    project_all()
    expected = PaymentView.objects.get(payment_id=payment.id)
    _archive(first)
    # when the payments read model is rebuilt from the first event
    projection_replay(name="payments")
    # then the archived payment is in it, as before
    rebuilt = PaymentView.objects.get(payment_id=payment.id)
    assert (rebuilt.status, rebuilt.captured_amount, rebuilt.version) == (
        expected.status,
        expected.captured_amount,
        expected.version,
    )


def test_events_api_reads_archived_events(old_month, pay_in):
    first = old_month(8)
    payment = pay_in(first)
    project_all()
    _archive(first)
    # when the merchant asks for the payment's events through the API
    client = APIClient()
    token = api_token_issue(username=f"archive-{uuid.uuid4().hex[:6]}", merchant_id=pay_in.merchant)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.get(f"/api/v1/payments/{payment.id}/events")
    # then they are all there, from the archive, in order
    assert response.status_code == 200, response.content
    body = response.json()
    items = body["results"] if isinstance(body, dict) and "results" in body else body
    assert [item["event_type"] for item in items] == ["PaymentInitiated", "PaymentAuthorized", "PaymentCaptured"]


def test_altered_archive_fails_verify_and_is_refused_by_restore(old_month, pay_in):
    first = old_month(9)
    payment = pay_in(first)
    project_all()
    _archive(first)
    obj = ArchiveObject.objects.get(kind="events", period_start=first)
    original = archive_store().get(obj.key)
    altered = bytearray(original)
    altered[len(altered) // 2] ^= 0x01
    archive_store().put(obj.key, bytes(altered))
    reader._table.cache_clear()
    try:
        # then verify_archives fails loudly, naming the object
        err = io.StringIO()
        with pytest.raises(CommandError, match="do not match their manifests"):
            call_command("verify_archives", stdout=io.StringIO(), stderr=err)
        assert obj.key in err.getvalue()
        # and restore_events refuses it, leaving the month archived
        with pytest.raises(CommandError, match="not restored"):
            call_command("restore_events", f"--month={_month_text(first)}", stdout=io.StringIO())
        assert partitions.partition_name(first) not in partitions.existing_partitions()
        # and reading the payment fails rather than tell a partial story
        with pytest.raises(archive_events.ArchiveCorrupt):
            eventstore.load(payment.id)
        # a missing object is reported too
        archive_store().delete(obj.key)
        with pytest.raises(CommandError):
            call_command("verify_archives", stdout=io.StringIO(), stderr=io.StringIO())
    finally:
        archive_store().put(obj.key, original)
        reader._table.cache_clear()
    call_command("verify_archives", stdout=io.StringIO())


def test_restore_puts_the_month_back(old_month, pay_in):
    first = old_month(10)
    payment = pay_in(first)
    project_all()
    rows = _partition_rows(first)
    ids = set(Event.objects.filter(aggregate_id=payment.id).values_list("event_id", flat=True))
    _archive(first)
    out = io.StringIO()
    call_command("restore_events", f"--month={_month_text(first)}", stdout=out)
    assert f"restored {rows} events" in out.getvalue()
    assert partitions.partition_name(first) in partitions.existing_partitions()
    assert _partition_rows(first) == rows
    assert set(Event.objects.filter(aggregate_id=payment.id).values_list("event_id", flat=True)) == ids
    assert ArchiveObject.objects.get(kind="events", period_start=first).state == "restored"
    # and it archives again, as a new object
    _archive(first)
    assert ArchiveObject.objects.filter(kind="events", period_start=first).count() == 2


def test_hot_months_are_never_archived(old_month, pay_in):
    # the policy's payment_events hot window is P3M: the current month and the two before it
    first = old_month(2)
    pay_in(first)
    project_all()
    with pytest.raises(CommandError, match="is one of the hot months"):
        _archive(first)
    # and --before a later month stops at the hot window: the month is not among those it would archive
    hot = hot_boundary(dt.datetime.now(dt.UTC).date())
    assert first >= hot
    assert first not in archive_events.months_before(hot)
    assert partitions.partition_name(first) in partitions.existing_partitions()


def test_an_interrupted_month_resumes_with_its_written_object(old_month, pay_in):
    first = old_month(12)
    payment = pay_in(first)
    project_all()
    name = partitions.partition_name(first)
    # given a run cut off after writing its object (the object and its record exist, the partition too)
    obj = archive_events._write(first, archive_events.export_table(name), "cut-off run", None)
    assert ArchiveObject.objects.get(id=obj.id).state == "written"
    # when archive_events runs again
    assert _archive(first).startswith(f"{_month_text(first)}: archived")
    # then it kept that object (it still matched the partition): one object, no second copy in the store
    obj.refresh_from_db()
    assert obj.state == "archived"
    assert ArchiveObject.objects.filter(period_start=first).count() == 1
    assert [k for k in archive_store().keys(f"warm/events/{first:%Y-%m}/") if not k.endswith(".json")] == [obj.key]
    assert [e.version for e in eventstore.load(payment.id)] == [1, 2, 3]


def test_a_projection_behind_refuses_the_month(old_month, pay_in):
    first = old_month(11)
    pay_in(first)
    # the projections have not run: archiving now would hide events from them
    with pytest.raises(CommandError, match="not archived"):
        _archive(first)
    assert partitions.partition_name(first) in partitions.existing_partitions()
    assert not ArchiveObject.objects.filter(period_start=first, state="archived").exists()


def test_the_console_timeline_and_the_payment_page_show_archived_events(old_month, pay_in):
    first = old_month(35)
    payment = pay_in(first)
    project_all()
    _archive(first)
    user = get_user_model().objects.create_user(f"root-{uuid.uuid4().hex[:6]}", is_staff=True, is_superuser=True)
    client = staff_login(Client(), user)
    timeline = client.get(f"/admin/console/payments/{payment.id}/").content.decode()
    assert re.findall(r'data-event-type="(\w+)"', timeline) == [
        "PaymentInitiated",
        "PaymentAuthorized",
        "PaymentCaptured",
    ]
    page = client.get(f"/admin/payments/paymentstream/{payment.id}/change/").content.decode()
    assert page.count("(archived)") == 3
