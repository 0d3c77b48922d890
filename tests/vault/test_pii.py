"""PII fields (vault.fields) on the Customer model: only ciphertext in the database, in dumpdata and in
serializers; ciphertexts bound to field, row and subject; no query on ciphertext; blind indexes; crypto-shredding
with forget_subject; key rotation leaves every value readable."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import uuid

import pytest
from django.core import serializers
from django.core.exceptions import FieldError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from accounts import selectors, services
from accounts.models import Customer
from fintech import eventstore
from tests.accounts.helpers import PII_COLUMNS, customer_details, pii_needles, raw_event_rows, raw_pii_columns
from tests.vault.helpers import database_leaks
from vault import keys
from vault.fields import EncryptedValueError, Sealed, blind_index, subject_blind_indexes_erase
from vault.models import SubjectKey
from vault.services import SubjectForgotten

pytestmark = pytest.mark.django_db


@pytest.fixture
def register(db):
    """Register a customer through the accounts service: (customer, the details it was given)."""

    def make(**overrides):
        details = {**customer_details(), **overrides}
        return services.customer_register(**details, actor="test"), details

    return make


def _forget(subject_id) -> str:
    out = io.StringIO()
    call_command("forget_subject", str(subject_id), stdout=out)
    return out.getvalue()


def _set_raw(customer_id, column: str, value: bytes | None) -> None:
    # The column is one of PII_COLUMNS, never input.
    assert column in PII_COLUMNS
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE accounts_customer SET {column} = %s WHERE id = %s", [value, customer_id])  # noqa: S608


def _leaks(values, needles: list[str]) -> list[tuple[str, str]]:
    return [(str(key), needle) for key, value in values for needle in needles if value and needle.encode() in value]


# what the database holds -----------------------------------------------------------------------------------------
def test_save_stores_no_plaintext_in_any_column(register):
    # given a registered customer
    customer, details = register()
    # when the PII columns are read with SQL
    stored = raw_pii_columns(customer.id)
    # then each is a versioned header naming the subject followed by a Tink ciphertext, with no plaintext in it
    for value in stored.values():
        version, subject, ciphertext = value.split(b":", 2)
        assert (version, subject) == (b"v1", str(customer.id).encode())
        assert keys.key_id_of(ciphertext)  # a Tink ciphertext under the subject's key
    assert _leaks(stored.items(), pii_needles(details)) == []
    # and no column of any table (event store included) holds the PII in clear
    assert database_leaks(texts=pii_needles(details), blobs=[]) == []


def test_save_same_values_twice_gives_different_ciphertexts(register):
    first, details = register()
    second, _ = register(**{**details, "email": f"x{details['email']}"})
    assert raw_pii_columns(first.id)["name"] != raw_pii_columns(second.id)["name"]


def test_database_rejects_plaintext_written_by_sql(register):
    # given a customer, when a client writes a plaintext name with SQL, then the column's check refuses it
    customer, _ = register()
    with pytest.raises(IntegrityError), transaction.atomic():
        _set_raw(customer.id, "name", b"Hanako Plain")


def test_queryset_update_with_plaintext_raises(register):
    customer, _ = register()
    with pytest.raises(TypeError, match="ciphertext only"):
        Customer.objects.filter(pk=customer.pk).update(name="Hanako Plain")


def test_bulk_update_with_plaintext_raises(register):
    customer, _ = register()
    customer.name = "Hanako Plain"
    with pytest.raises(TypeError, match="ciphertext only"):
        Customer.objects.bulk_update([customer], ["name"])


# reading back ----------------------------------------------------------------------------------------------------
def test_read_returns_the_plaintext_saved(register):
    customer, details = register()
    fresh = Customer.objects.get(pk=customer.pk)
    assert {key: getattr(fresh, key) for key in details} == details
    assert isinstance(fresh.date_of_birth, dt.date)


def test_read_deferred_field_decrypts_on_access(register):
    customer, details = register()
    fresh = Customer.objects.only("id").get(pk=customer.pk)
    assert fresh.email == details["email"]


def test_values_returns_sealed_not_plaintext(register):
    customer, details = register()
    [name] = Customer.objects.filter(pk=customer.pk).values_list("name", flat=True)
    assert isinstance(name, Sealed)
    assert details["name"] not in repr(name)


def test_save_changed_value_reencrypts_and_unchanged_keeps_ciphertext(register):
    # given a customer read back from the database
    customer, details = register()
    fresh = Customer.objects.get(pk=customer.pk)
    before = raw_pii_columns(customer.id)
    # when it is saved without a change, then no ciphertext changes
    assert fresh.name == details["name"]  # decrypted, then left alone
    fresh.save()
    assert raw_pii_columns(customer.id) == before
    # when the address and date of birth change, then those two are re-encrypted and read back
    fresh.address, fresh.date_of_birth = "9-9 Other Street, Osaka", dt.date(1990, 1, 2)
    fresh.save()
    after = raw_pii_columns(customer.id)
    assert {column for column in PII_COLUMNS if after[column] != before[column]} == {"address", "date_of_birth"}
    again = Customer.objects.get(pk=customer.pk)
    assert (again.address, again.date_of_birth) == ("9-9 Other Street, Osaka", dt.date(1990, 1, 2))


def test_save_changed_email_moves_the_blind_index(register):
    customer, details = register()
    fresh = Customer.objects.get(pk=customer.pk)
    fresh.email = "New.Address@Example.org"
    fresh.save()
    assert selectors.customer_get_by_email(email="new.address@example.org").pk == customer.pk
    assert selectors.customer_get_by_email(email=details["email"]) is None


def test_save_value_set_to_none_stores_null(register):
    customer, _ = register()
    fresh = Customer.objects.get(pk=customer.pk)
    fresh.phone = None
    fresh.save()
    assert raw_pii_columns(customer.id)["phone"] is None
    assert Customer.objects.get(pk=customer.pk).phone is None


# ciphertexts are bound to field, row and subject -----------------------------------------------------------------
def test_ciphertext_swapped_between_customers_raises_on_read(register):
    # given two customers whose stored names are exchanged with SQL
    (first, _), (second, _) = register(), register()
    first_name, second_name = raw_pii_columns(first.id)["name"], raw_pii_columns(second.id)["name"]
    _set_raw(first.id, "name", second_name)
    _set_raw(second.id, "name", first_name)
    # when either is read, then reading the name raises rather than showing the other person's
    for customer in (first, second):
        fresh = Customer.objects.get(pk=customer.pk)
        with pytest.raises(EncryptedValueError, match="another subject"):
            _ = fresh.name


def test_ciphertext_with_header_renamed_to_the_row_raises_on_read(register):
    # given the other customer's ciphertext given this row's subject id in its header
    (first, _), (second, _) = register(), register()
    _, _, ciphertext = raw_pii_columns(second.id)["name"].split(b":", 2)
    _set_raw(first.id, "name", b"v1:" + str(first.id).encode() + b":" + ciphertext)
    with pytest.raises(EncryptedValueError, match="does not decrypt"):
        _ = Customer.objects.get(pk=first.pk).name


def test_ciphertext_copied_to_another_field_raises_on_read(register):
    customer, _ = register()
    _set_raw(customer.id, "phone", raw_pii_columns(customer.id)["name"])
    fresh = Customer.objects.get(pk=customer.pk)
    with pytest.raises(EncryptedValueError, match="does not decrypt"):
        _ = fresh.phone
    assert fresh.name  # the other fields still read


@pytest.mark.parametrize("position", [3 + 36 + 1, 3 + 36 + 1 + 5, -1])
def test_tampered_byte_raises_on_read(register, position):
    # given one flipped bit in the key id, the nonce, or the tag of the stored e-mail
    customer, _ = register()
    stored = bytearray(raw_pii_columns(customer.id)["email"])
    stored[position] ^= 0x01
    _set_raw(customer.id, "email", bytes(stored))
    with pytest.raises(EncryptedValueError):
        _ = Customer.objects.get(pk=customer.pk).email


def test_ciphertext_of_unknown_subject_raises_on_read(register):
    customer, _ = register()
    SubjectKey.objects.filter(subject_id=str(customer.id)).delete()
    with pytest.raises(EncryptedValueError, match="no data key"):
        _ = Customer.objects.get(pk=customer.pk).name


# queries ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lookup", ["name", "name__iexact", "email__contains", "name__in", "name__lower"])
def test_filter_on_encrypted_field_raises(register, lookup):
    register()
    value = ["x"] if lookup.endswith("__in") else "x"
    with pytest.raises(FieldError, match="encrypted"):
        Customer.objects.filter(**{lookup: value})


def test_filter_isnull_on_encrypted_field_works(register):
    customer, _ = register(phone=None)
    assert list(Customer.objects.filter(phone__isnull=True)) == [customer]
    assert not Customer.objects.filter(name__isnull=True).exists()


def test_filter_blind_index_with_plaintext_raises(register):
    register()
    with pytest.raises(TypeError, match="not plaintext"):
        list(Customer.objects.filter(email_index="a@b.com"))


def test_blind_index_differs_per_context_and_ignores_case_for_email(register):
    customer, details = register()
    stored = Customer.objects.get(pk=customer.pk).email_index
    assert len(stored) == 32
    assert stored == selectors.customer_email_index(details["email"].upper())
    normalized = details["email"].strip().lower()
    assert blind_index(normalized, context="accounts.customer.email") == stored
    assert blind_index(normalized, context="accounts.customer.other") != stored
    assert normalized.encode() not in stored


# serializers and dumpdata ----------------------------------------------------------------------------------------
def test_dumpdata_shows_ciphertext_only(register):
    # given customers
    customers = [register() for _ in range(2)]
    # when they are dumped
    out = io.StringIO()
    call_command("dumpdata", "accounts.customer", stdout=out)
    dumped = out.getvalue()
    # then no PII is in the output, and each field is the stored ciphertext in base64
    for _, details in customers:
        assert [needle for needle in pii_needles(details) if needle in dumped] == []
    by_id = {record["pk"]: record["fields"] for record in json.loads(dumped)}
    for customer, _ in customers:
        stored = raw_pii_columns(customer.id)
        fields = by_id[str(customer.id)]
        for column in PII_COLUMNS:
            assert base64.b64decode(fields[column]) == stored[column]


def test_serialize_unsaved_change_shows_fresh_ciphertext(register):
    customer, _ = register()
    fresh = Customer.objects.get(pk=customer.pk)
    fresh.name = "Hanako Unsaved-Change"
    dumped = serializers.serialize("json", [fresh])
    assert "Unsaved" not in dumped
    name = base64.b64decode(json.loads(dumped)[0]["fields"]["name"])
    assert name.startswith(b"v1:" + str(customer.id).encode() + b":")


# crypto-shredding ------------------------------------------------------------------------------------------------
def test_forget_subject_makes_fields_none_and_event_pii_unreadable_without_touching_rows(register):
    # given a customer, their stored columns and their event row
    customer, _ = register()
    columns_before, events_before = raw_pii_columns(customer.id), raw_event_rows(customer.id)
    # when they are forgotten
    output = _forget(customer.id)
    # then every PII field reads None, the event's PII cannot be decrypted, and the event row is unchanged
    assert "data key destroyed" in output
    fresh = Customer.objects.get(pk=customer.pk)
    assert [getattr(fresh, column) for column in PII_COLUMNS] == [None] * len(PII_COLUMNS)
    [recorded] = eventstore.load(customer.id)
    assert selectors.customer_registered_pii(event=recorded.event) is None
    assert raw_event_rows(customer.id) == events_before
    assert raw_pii_columns(customer.id) == columns_before  # still ciphertext, now without a key
    record = SubjectKey.objects.get(subject_id=str(customer.id))
    assert record.wrapped_key is None
    assert record.forgotten_at is not None


def test_forget_subject_twice_is_harmless(register):
    customer, _ = register()
    _forget(customer.id)
    output = _forget(customer.id)
    assert "already forgotten" in output
    assert Customer.objects.get(pk=customer.pk).name is None


def test_forget_subject_leaves_other_customers_readable(register):
    (forgotten, _), (kept, details) = register(), register()
    _forget(forgotten.id)
    assert Customer.objects.get(pk=kept.pk).name == details["name"]
    assert selectors.customer_get_by_email(email=details["email"]).pk == kept.pk


def test_forget_subject_then_save_keeps_ciphertext_and_new_pii_is_refused(register):
    customer, _ = register()
    _forget(customer.id)
    before = raw_pii_columns(customer.id)
    fresh = Customer.objects.get(pk=customer.pk)
    assert fresh.name is None
    fresh.save()
    assert raw_pii_columns(customer.id) == before
    fresh.name = "Hanako Again"
    with pytest.raises(SubjectForgotten):
        fresh.save()


def test_forget_subject_unknown_subject_prevents_later_pii(db):
    # given a subject that never stored anything, when forgotten, then no PII can be stored for it afterwards
    subject = uuid.uuid4()
    assert "already forgotten (or never stored)" in _forget(subject)
    details = customer_details()
    with pytest.raises(SubjectForgotten), transaction.atomic():
        Customer(id=subject, name=details["name"], email=details["email"]).save()
    assert not Customer.objects.exists()


def test_forget_subject_invalid_id_raises_command_error(db):
    with pytest.raises(CommandError):
        _forget("a:b")


def test_subject_blind_indexes_erase_other_subject_changes_nothing(register):
    customer, _ = register()
    assert subject_blind_indexes_erase(subject_id=str(uuid.uuid4())) == 0
    assert subject_blind_indexes_erase(subject_id="not-a-uuid") == 0
    assert Customer.objects.get(pk=customer.pk).email_index is not None


# key rotation ----------------------------------------------------------------------------------------------------
def test_rotate_keys_values_still_decrypt_and_ciphertexts_unchanged(isolated_keys, register):
    # given customers whose keys are wrapped under the first KEK key of an isolated key directory
    customers = [register() for _ in range(2)]
    stored = {customer.id: raw_pii_columns(customer.id) for customer, _ in customers}
    # when the keys are rotated and the old KEK key retired
    call_command("rotate_keys", "--retire", stdout=io.StringIO())
    keys.key_provider_reset()
    # then every value decrypts, the field ciphertexts did not change, and the blind index still finds them
    for customer, details in customers:
        fresh = Customer.objects.get(pk=customer.pk)
        assert {key: getattr(fresh, key) for key in details} == details
        assert raw_pii_columns(customer.id) == stored[customer.id]
        assert selectors.customer_get_by_email(email=details["email"]).pk == customer.pk
        assert selectors.customer_registered_pii(event=eventstore.load(customer.id)[0].event)["name"] == details["name"]
