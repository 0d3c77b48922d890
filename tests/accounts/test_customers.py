"""Customers: registration (row and event in one transaction, PII encrypted in both), lookup by e-mail through
the blind index, the event's PII after forgetting, and the admin, which lists no PII."""

import base64
import datetime as dt
import io
import json

import pytest
import tink
from django.core.exceptions import ValidationError
from django.core.management import call_command

from accounts import selectors
from accounts.domain import CustomerEmailTaken, CustomerRegistered
from accounts.models import Customer
from fintech import eventstore
from tests.accounts.helpers import pii_needles, raw_event_rows
from vault import services as vault_services
from vault.models import SubjectKey

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/accounts/customer/"


def _forget(customer: Customer) -> str:
    out = io.StringIO()
    call_command("forget_subject", str(customer.id), stdout=out)
    return out.getvalue()


# registration ----------------------------------------------------------------------------------------------------
def test_customer_register_appends_event_referring_by_id_with_encrypted_pii(register):
    # given / when a customer registers
    customer, details = register()
    # then one CustomerRegistered event starts the customer's stream, naming them by id only
    [recorded] = eventstore.load(customer.id)
    assert recorded.aggregate_type == "customer"
    assert recorded.version == 1
    assert recorded.metadata["actor"] == "test"
    assert isinstance(recorded.event, CustomerRegistered)
    assert recorded.event.customer_id == customer.id
    # and the stored event data holds none of the PII, which only the customer's key opens
    [row] = raw_event_rows(customer.id)
    stored = row[3] + row[4]
    assert [needle for needle in pii_needles(details) if needle in stored] == []
    assert selectors.customer_registered_pii(event=recorded.event) == {
        **details,
        "date_of_birth": details["date_of_birth"].isoformat(),
    }


def test_customer_register_with_optional_fields_missing_stores_nulls(register):
    customer, _ = register(phone=None, address=None, date_of_birth=None)
    fresh = Customer.objects.get(pk=customer.pk)
    assert (fresh.phone, fresh.address, fresh.date_of_birth) == (None, None, None)
    assert Customer.objects.filter(pk=customer.pk, phone__isnull=True, address__isnull=True).exists()
    pii = selectors.customer_registered_pii(event=eventstore.load(customer.id)[0].event)
    assert (pii["phone"], pii["address"], pii["date_of_birth"]) == (None, None, None)


def test_customer_register_existing_email_raises_taken_and_writes_nothing(register):
    # given a customer
    _, details = register()
    before = (Customer.objects.count(), SubjectKey.objects.count())
    # when another registers with the same address in another case and with blanks
    with pytest.raises(CustomerEmailTaken):
        register(email=f"  {details['email'].upper()} ")
    # then no row, key or event was added
    assert (Customer.objects.count(), SubjectKey.objects.count()) == before


@pytest.mark.parametrize("changes", [{"email": "not-an-address"}, {"email": ""}, {"name": "   "}])
def test_customer_register_invalid_details_raise_validation_error(register, changes):
    with pytest.raises(ValidationError):
        register(**changes)
    assert not Customer.objects.exists()


def test_customer_register_is_atomic_when_the_event_append_fails(register, monkeypatch):
    # given an event store that fails
    def broken(*args, **kwargs):
        raise RuntimeError("event store down")

    monkeypatch.setattr(eventstore, "append", broken)
    # when a customer registers, then nothing of theirs remains
    with pytest.raises(RuntimeError):
        register()
    assert not Customer.objects.exists()
    assert not SubjectKey.objects.exists()


# lookup by e-mail ------------------------------------------------------------------------------------------------
def test_customer_get_by_email_any_case_and_blanks_finds_the_customer(register):
    customer, details = register()
    register()  # another customer
    for form in (details["email"], details["email"].upper(), f" {details['email'].lower()}\n"):
        found = selectors.customer_get_by_email(email=form)
        assert found is not None
        assert found.pk == customer.pk
        assert found.name == details["name"]


def test_customer_get_by_email_unknown_address_returns_none(register):
    register()
    assert selectors.customer_get_by_email(email="nobody@example.org") is None


def test_customer_get_by_email_after_forget_returns_none(register):
    # given a forgotten customer: their address must not find them any more
    customer, details = register()
    _forget(customer)
    assert selectors.customer_get_by_email(email=details["email"]) is None
    assert Customer.objects.get(pk=customer.pk).email_index is None


def test_customer_register_after_forgetting_someone_with_that_email_succeeds(register):
    first, details = register()
    _forget(first)
    second, _ = register(email=details["email"])
    assert selectors.customer_get_by_email(email=details["email"]).pk == second.pk


# forgetting ------------------------------------------------------------------------------------------------------
def test_customer_registered_pii_after_forget_returns_none_and_event_row_unchanged(register):
    # given a registered customer and their event as stored
    customer, _ = register()
    before = raw_event_rows(customer.id)
    # when they are forgotten
    _forget(customer)
    # then the event row is byte for byte the same, and its PII reads as None
    assert raw_event_rows(customer.id) == before
    [recorded] = eventstore.load(customer.id)
    assert recorded.event.pii  # the ciphertext is still there, unreadable
    assert selectors.customer_registered_pii(event=recorded.event) is None


def test_customer_registered_pii_tampered_raises(register):
    customer, _ = register()
    event = eventstore.load(customer.id)[0].event
    raw = bytearray(base64.b64decode(event.pii))
    raw[-1] ^= 1
    tampered = CustomerRegistered(
        occurred_at=event.occurred_at, customer_id=event.customer_id, pii=base64.b64encode(raw).decode()
    )
    with pytest.raises(tink.TinkError):
        selectors.customer_registered_pii(event=tampered)


def test_customer_registered_pii_of_another_customer_raises(register):
    first, _ = register()
    second, _ = register()
    event = eventstore.load(first.id)[0].event
    # the first customer's ciphertext presented as the second's: another key and another context
    moved = CustomerRegistered(occurred_at=event.occurred_at, customer_id=second.id, pii=event.pii)
    with pytest.raises(tink.TinkError):
        selectors.customer_registered_pii(event=moved)


# the admin -------------------------------------------------------------------------------------------------------
def test_customer_admin_changelist_shows_no_pii(staff_client, register):
    # given customers, one of them forgotten
    customers = [register() for _ in range(3)]
    _forget(customers[2][0])
    # when staff open the list
    response = staff_client.get(CHANGELIST)
    body = response.content.decode()
    # then it lists their ids, and no PII of anyone
    assert response.status_code == 200
    for customer, details in customers:
        assert str(customer.id) in body
        assert [needle for needle in pii_needles(details) if needle in body] == []
    assert body.count('alt="True"') == 1  # the forgotten column


def test_customer_admin_changelist_opens_no_key(staff_client, register, monkeypatch):
    # given customers and a vault that fails on any use of a subject key
    customers = [register() for _ in range(2)]

    def no_key(**kwargs):
        raise AssertionError("the list decrypted something")

    monkeypatch.setattr(vault_services, "subject_key", no_key)
    # when staff open the list, then it renders: listing customers decrypts nothing
    response = staff_client.get(CHANGELIST)
    assert response.status_code == 200
    assert all(str(customer.id) in response.content.decode() for customer, _ in customers)


def test_customer_admin_search_by_exact_email_finds_only_that_customer(staff_client, register):
    (wanted, details), (other, _) = register(), register()
    body = staff_client.get(CHANGELIST, {"q": details["email"].upper()}).content.decode()
    assert str(wanted.id) in body
    assert str(other.id) not in body
    assert [needle for needle in pii_needles(details) if needle in body.replace(details["email"].upper(), "")] == []


def test_customer_admin_search_by_id_finds_it(staff_client, register):
    (wanted, _), (other, _) = register(), register()
    body = staff_client.get(CHANGELIST, {"q": str(wanted.id)}).content.decode()
    assert str(wanted.id) in body
    assert str(other.id) not in body


def test_customer_admin_search_by_name_finds_nothing(staff_client, register):
    # given a customer, when staff search by their name or part of their address, then nothing is found
    customer, details = register()
    for term in (details["name"], details["email"].split("@")[0], "Hanako"):
        response = staff_client.get(CHANGELIST, {"q": term})
        assert response.status_code == 200
        assert str(customer.id) not in response.content.decode()


def test_customer_admin_change_view_shows_decrypted_values_read_only(staff_client, register):
    customer, details = register()
    response = staff_client.get(f"{CHANGELIST}{customer.id}/change/")
    body = response.content.decode()
    assert response.status_code == 200
    for key in ("name", "email", "phone", "address"):
        assert details[key] in body
    assert 'name="_save"' not in body  # read-only
    assert staff_client.get(f"{CHANGELIST}add/").status_code == 403


def test_customer_admin_change_view_of_forgotten_customer_shows_no_pii(staff_client, register):
    customer, details = register()
    _forget(customer)
    response = staff_client.get(f"{CHANGELIST}{customer.id}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert [needle for needle in pii_needles(details) if needle in body] == []


def test_customer_str_holds_no_pii(register):
    customer, details = register()
    assert str(customer) == f"customer {customer.id}"
    assert details["name"] not in repr(customer)


def test_customer_registered_event_data_holds_only_id_and_pii(register):
    customer, _ = register(date_of_birth=dt.date(2000, 2, 29))
    recorded = eventstore.load(customer.id)[0]
    assert json.loads(raw_event_rows(customer.id)[0][3]).keys() == {"customer_id", "pii"}
    assert recorded.event.customer_id == customer.id
