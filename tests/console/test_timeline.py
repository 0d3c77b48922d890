"""A payment's timeline (every event with its actor, correlation id and the status after it, the ledger entries it
produced, its card's detokenisations) and the payment search (id, merchant, last 4, authorization code,
amount), each cut to what the role may read, every view recorded in the staff audit trail."""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from fintech.eventstore import command_metadata
from fintech.models import StaffAuditRecord
from projections.models import PaymentView
from vault import services as vault

pytestmark = pytest.mark.django_db(transaction=True)

SEARCH = "/admin/console/payments/"


def _timeline(payment_id) -> str:
    return f"/admin/console/payments/{payment_id}/"


def _cde_detokenises(token: str, purpose: str) -> None:
    vault.role_groups_ensure()
    cde = get_user_model().objects.create_user(f"cde-{uuid.uuid4().hex[:8]}", is_staff=True)
    cde.groups.add(Group.objects.get(name="cde"))
    vault.card_detokenize(token=token, purpose=purpose, actor=cde, channel="admin")


def test_timeline_shows_events_statuses_entries_and_detokenisations(staff, pay, project):
    # given a refunded payment whose capture was made under a correlation id, booked by the ledger
    with command_metadata(correlation_id="corr-console-1"):
        payment = pay(7000, "refunded")
    project()
    _cde_detokenises(pay.token, "chargeback 4711")
    client = staff("auditor")
    # when an auditor opens its timeline
    response = client.get(_timeline(payment.id))
    assert response.status_code == 200
    page = response.content.decode()
    # then every event is there, in order, with the status after it, its actor and correlation id
    events = re.findall(r'data-event-type="(\w+)"', page)
    assert events == ["PaymentInitiated", "PaymentAuthorized", "PaymentCaptured", "PaymentRefunded"]
    statuses = re.findall(r"</strong> → <span class=\"console-status console-status-\w+\">(\w+)</span>", page)
    assert statuses == ["initiated", "authorized", "captured", "partially_refunded"]
    assert re.findall(r'class="console-actor">([^<]*)<', page) == ["user:console-test"] * 4
    assert re.findall(r"correlation <code>([^<]*)</code>", page) == ["corr-console-1"] * 4
    # and the ledger entries it produced (capture and refund), and who saw its card's number, and why
    assert 'id="ledger-entries"' in page
    assert ">capture<" in page
    assert ">refund<" in page
    assert 'id="detokenizations"' in page
    assert "chargeback 4711" in page
    # and the view is in the staff audit trail
    assert StaffAuditRecord.objects.filter(
        username=client.user.username, action="view", object=f"console.timeline:{payment.id}"
    ).exists()


def test_support_sees_the_timeline_without_entries_or_detokenisations(staff, pay, project):
    payment = pay(7000)
    project()
    _cde_detokenises(pay.token, "dispute")
    page = staff("support").get(_timeline(payment.id)).content.decode()
    assert "PaymentCaptured" in page
    assert "•••• 4242" in page
    assert "4242424242424242" not in page
    assert 'id="ledger-entries"' not in page
    assert 'id="detokenizations"' not in page
    assert "dispute" not in page


def test_cde_may_not_open_timelines_and_an_unknown_payment_is_404(staff, pay, project):
    payment = pay(7000)
    assert staff("cde").get(_timeline(payment.id)).status_code == 403
    assert staff("support").get(_timeline(uuid.uuid4())).status_code == 404
    assert staff("support").get("/admin/console/payments/not-a-uuid/").status_code == 404


def _found(client, **criteria) -> set[str]:
    response = client.get(SEARCH, criteria)
    assert response.status_code == 200
    return set(re.findall(r"/admin/console/payments/([0-9a-f-]{36})/", response.content.decode()))


def test_search_by_id_merchant_last4_authorization_code_and_amount(staff, pay, project, merchant):
    first, second, declined = pay(7000), pay(8100), pay(2500, "failed")
    project()
    code = PaymentView.objects.get(payment_id=first.id).authorization_code
    assert code
    client = staff("support")
    ours = {str(first.id), str(second.id), str(declined.id)}
    assert _found(client, payment_id=str(first.id)) == {str(first.id)}
    assert _found(client, merchant_id=merchant) == ours
    assert _found(client, merchant_id=merchant, last4="4242") == ours
    assert _found(client, merchant_id=merchant, last4="1111") == set()
    assert _found(client, authorization_code=code) == {str(first.id)}
    assert _found(client, amount="8100", currency="JPY", merchant_id=merchant) == {str(second.id)}
    # the search is in the trail, without the criteria's values
    record = StaffAuditRecord.objects.filter(username=client.user.username, object="console.payment_search").last()
    assert record.detail.startswith("searched by ")
    assert "4242" not in record.detail


@pytest.mark.parametrize(
    ("criteria", "error"),
    [
        ({"last4": "12ab"}, "Enter 4 digits."),
        ({"amount": "1e3", "currency": "JPY"}, "Enter a decimal amount"),
        ({"amount": "10"}, "Choose the amount"),
        ({"amount": "10.5", "currency": "JPY"}, ""),
        ({"payment_id": "not-a-uuid"}, "valid UUID"),
        ({"merchant_id": "m\x00x"}, "Null characters"),
        ({"merchant_id": "m" * 500}, "at most 64"),
    ],
)
def test_hostile_search_input_is_a_form_error_never_a_server_error(staff, criteria, error):
    response = staff("support").get(SEARCH, criteria)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'class="errorlist' in page
    assert error in page


def test_search_and_timeline_are_refused_to_cde(staff):
    assert staff("cde").get(SEARCH).status_code == 403
