"""Where the card number is, byte for byte: only inside the ciphertext, nowhere else in the database."""

import hashlib
import hmac

import pytest
from django.db import connection
from django_redis import get_redis_connection

from fintech.money import Money
from payments import services as payments
from payments.domain import CAPTURED
from tests.vault.helpers import (
    DETOKENIZE_URL,
    TOKENS_URL,
    VISA,
    database_leaks,
    grouped,
    leaks_in_values,
    pan_byte_forms,
    pan_fragments_beyond_mask,
    pan_random,
    pan_text_forms,
    pan_varied,
    values_of_row,
)
from vault.models import Card

pytestmark = pytest.mark.django_db

NAME = "Hanako Sato"


def _vault_card_rows() -> tuple[list[str], list[list[object]]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM vault_card")
        columns = [column.name for column in cursor.description]
        return columns, [values_of_row(row) for row in cursor.fetchall()]


def test_tokenize_raw_columns_hold_no_number_nor_name(tokenize):
    # given cards vaulted with names, the number written three ways
    pans = [VISA, pan_varied(), pan_random(19)]
    for written in (VISA, grouped(pans[1], " "), grouped(pans[2], "-")):
        tokenize(written, merchant_id="m-rawscan", cardholder_name=NAME)
    # when the table is read as stored, every column of every row
    columns, rows = _vault_card_rows()
    assert len(rows) == 3
    assert {"number_ciphertext", "wrapped_key", "blind_index", "name_ciphertext"} <= set(columns)
    for row in rows:
        textual = [value for value in row if isinstance(value, str | bytes)]
        for pan in pans:
            # then no form of any number is there
            assert not leaks_in_values(row, texts=pan_text_forms(pan), blobs=pan_byte_forms(pan))
        for pan in pans[1:]:
            # nor any digits beyond the first 6 / last 4 that the mask shows (the masked column included);
            # 4242... repeats its BIN in its middle, so it has a test of its own below
            assert not leaks_in_values(textual, texts=pan_fragments_beyond_mask(pan), blobs=[])
        # and the cardholder name is not in plaintext either
        name_blobs = [NAME.encode("utf-16-le"), NAME.encode("utf-16-be")]
        assert not leaks_in_values(row, texts=[NAME, NAME.upper(), "Hanako", "Sato"], blobs=name_blobs)


def test_tokenize_visa_bin_and_last4_not_stored_together(tokenize):
    tokenize(VISA, merchant_id="m-rawscan")
    _, rows = _vault_card_rows()
    for value in rows[0]:
        if isinstance(value, str | bytes):
            for fragment in ("42424242", "4242424242", "4242424"):
                assert fragment not in (value if isinstance(value, str) else value.decode("latin-1"))


def test_tokenize_blind_index_not_a_plain_hash(tokenize):
    card = tokenize(VISA, merchant_id="m-rawscan")
    index = bytes(Card.objects.get(token=card.token).blind_index)
    assert len(index) == 32
    unkeyed = [
        hashlib.sha256(VISA.encode()).digest(),
        hashlib.sha256(f"card:m-rawscan:{VISA}".encode()).digest(),
        hmac.new(b"", VISA.encode(), hashlib.sha256).digest(),
        hmac.new(b"", f"card:m-rawscan:{VISA}".encode(), hashlib.sha256).digest(),
    ]
    assert index not in unkeyed


def test_tokenize_ciphertexts_differ_for_same_number(tokenize):
    # the same number for two merchants: fresh data keys and nonces, nothing equal to compare
    first = tokenize(VISA, merchant_id="m-one")
    second = tokenize(VISA, merchant_id="m-two")
    assert bytes(first.number_ciphertext) != bytes(second.number_ciphertext)
    assert bytes(first.wrapped_key) != bytes(second.wrapped_key)


def _redis_leaks(pan: str) -> list[bytes]:
    redis = get_redis_connection("default")
    found = []
    for key in redis.scan_iter(count=1000):
        if any(form in key for form in pan_byte_forms(pan)):
            found.append(key)
            continue
        if redis.type(key) == b"string" and any(form in (redis.get(key) or b"") for form in pan_byte_forms(pan)):
            found.append(key)
    return found


def test_full_flow_number_only_in_ciphertext(vault_merchant_client, merchant_id, cde_client):
    # given a card tokenised through the API (with an idempotency key), named, written with spaces
    pan = pan_random()
    response = vault_merchant_client.post(
        TOKENS_URL,
        {"card_number": grouped(pan, " "), "exp_month": 12, "exp_year": 2035, "cardholder_name": NAME},
        format="json",
        HTTP_IDEMPOTENCY_KEY="flow-1",
    )
    assert response.status_code == 201
    token = response.json()["token"]
    # and a payment made with the token, authorised (the gateway detokenises) and captured
    payment = payments.payment_initiate(
        merchant_id=merchant_id, amount=Money(1000, "JPY"), payment_method_token=token, actor="user:flow"
    )
    payments.payment_authorize(payment_id=payment.id, actor="user:flow")
    payment = payments.payment_capture(payment_id=payment.id, actor="user:flow")
    assert payment.status == CAPTURED
    # and the card detokenised by a CDE operator
    detokenized = cde_client.post(DETOKENIZE_URL.format(token=token), {"purpose": "chargeback 12"}, format="json")
    assert detokenized.json() == {"card_number": pan}

    # then the payment's events carry the token, brand and last 4, never the number
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_data::text, metadata::text FROM fintech_event WHERE aggregate_id = %s ORDER BY version",
            [payment.id],
        )
        events = cursor.fetchall()
    assert len(events) == 3
    assert token in events[0][0]
    assert not leaks_in_values([value for row in events for value in row], texts=pan_text_forms(pan), blobs=[])
    # and no column of any table of the database holds the number in any form (the vault's ciphertext
    # included: the number is encrypted, not encoded)
    assert database_leaks(texts=pan_text_forms(pan), blobs=pan_byte_forms(pan)) == []
    # nor the cardholder name, outside its ciphertext
    assert database_leaks(texts=[NAME], blobs=[NAME.encode("utf-16-le")]) == []
    # nor the cache
    assert _redis_leaks(pan) == []


def test_database_scan_finds_a_planted_number(tokenize):
    # the detector itself: a number written into a text and a binary column is found in each
    pan = pan_random()
    card = tokenize(pan)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE vault_card SET brand = %s, name_ciphertext = %s WHERE token = %s",
            [grouped(pan, "-"), int(pan).to_bytes(8, "big"), card.token],
        )
    assert database_leaks(texts=pan_text_forms(pan), blobs=pan_byte_forms(pan)) == [
        "vault_card.brand",
        "vault_card.name_ciphertext",
    ]
