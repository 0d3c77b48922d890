"""The vault's HTTP API: tokenise for a merchant, detokenise for the CDE, never a number in an error or a
stored idempotency record; and the management command that makes a CDE operator."""

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction

from fintech.api import PROBLEM_CONTENT_TYPE
from tests.vault.helpers import (
    DETOKENIZE_URL,
    TOKENS_URL,
    VISA,
    VISA_MASKED,
    api_client,
    digit_windows,
    grouped,
    leaks_in_values,
    luhn_complete,
    only_digits,
    pan_byte_forms,
    pan_random,
    pan_text_forms,
    values_of_row,
)
from vault import services
from vault.models import Card, DetokenizationAudit

pytestmark = pytest.mark.django_db

BODY = {"card_number": VISA, "exp_month": 12, "exp_year": 2035}


def _audit(token: str) -> list[DetokenizationAudit]:
    return list(DetokenizationAudit.objects.filter(token=token).order_by("id"))


def _assert_no_number(response, submitted, *, windows: bool = True) -> None:
    """Neither the number as submitted nor its digits, nor (unless the answer may show the masked card) any 6
    of them in a row, are in the answer, body or headers."""
    text = response.content.decode() + " ".join(f"{name}: {value}" for name, value in response.items())
    submitted = str(submitted)
    assert submitted not in text
    digits = only_digits(submitted)
    assert digits not in text
    for window in digit_windows(digits) if windows else ():
        assert window not in text


# tokenise ---------------------------------------------------------------------------------------------------
def test_token_create_returns_201_card_summary(vault_merchant_client, merchant_id):
    response = vault_merchant_client.post(
        TOKENS_URL, {**BODY, "card_number": grouped(VISA, " "), "cardholder_name": "Hanako Sato"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"token", "brand", "last4", "masked", "exp_month", "exp_year"}
    assert re.match(r"^tok_[A-Za-z0-9]{24}$", body["token"])
    assert (body["brand"], body["last4"], body["masked"], body["exp_month"], body["exp_year"]) == (
        "visa",
        "4242",
        VISA_MASKED,
        12,
        2035,
    )
    _assert_no_number(response, VISA, windows=False)
    card = Card.objects.get(token=body["token"])
    assert card.merchant_id == merchant_id
    assert services.card_cardholder_name(card=card) == "Hanako Sato"


def test_token_create_same_card_same_token(vault_merchant_client):
    first = vault_merchant_client.post(TOKENS_URL, BODY, format="json").json()["token"]
    again = vault_merchant_client.post(TOKENS_URL, {**BODY, "card_number": grouped(VISA, "-")}, format="json")
    assert again.status_code == 201
    assert again.json()["token"] == first


def test_token_create_scoped_to_callers_merchant(vault_merchant_client, other_merchant_client):
    mine = vault_merchant_client.post(TOKENS_URL, BODY, format="json").json()["token"]
    theirs = other_merchant_client.post(TOKENS_URL, BODY, format="json").json()["token"]
    assert mine != theirs
    assert Card.objects.get(token=theirs).merchant_id == "m-beta"


@pytest.mark.parametrize(
    "card_number",
    [
        pytest.param("4242424242424241", id="luhn-invalid-16"),
        pytest.param("4242 4242 4242 4241", id="luhn-invalid-spaced"),
        pytest.param("4242-4242-4242-4241", id="luhn-invalid-dashed"),
        pytest.param(luhn_complete("4" * 24), id="25-digits"),
        pytest.param("4242424242424242424242424", id="25-digits-luhn-invalid"),
        pytest.param("4242abcd42424242", id="letters"),
        pytest.param("4242 4242 x242 4242", id="letter-spaced"),
        pytest.param("42424242424", id="11-digits"),
        pytest.param(4242424242424242, id="json-number"),
        pytest.param(["4242424242424242"], id="json-list"),
        pytest.param({"pan": "4242424242424242"}, id="json-object"),
        pytest.param("4" * 300, id="300-digits"),
    ],
)
def test_token_create_bad_number_400_without_number(vault_merchant_client, card_number):
    response = vault_merchant_client.post(TOKENS_URL, {**BODY, "card_number": card_number}, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert response.json()["code"] == "invalid_card"
    _assert_no_number(response, card_number if isinstance(card_number, str | int) else VISA)
    assert not Card.objects.exists()


@pytest.mark.parametrize(
    ("exp_month", "exp_year"),
    [(13, 2035), (0, 2035), ("12", 2035), (12.5, 2035), (True, 2035), (12, 2020), (12, "2035"), (None, 2035)],
)
def test_token_create_bad_expiry_400_without_number(vault_merchant_client, exp_month, exp_year):
    response = vault_merchant_client.post(
        TOKENS_URL, {**BODY, "exp_month": exp_month, "exp_year": exp_year}, format="json"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    _assert_no_number(response, VISA)
    assert not Card.objects.exists()


@pytest.mark.parametrize("missing", ["card_number", "exp_month", "exp_year"])
def test_token_create_missing_field_400_without_number(vault_merchant_client, missing):
    body = {name: value for name, value in BODY.items() if name != missing}
    response = vault_merchant_client.post(TOKENS_URL, body, format="json")
    assert response.status_code == 400
    _assert_no_number(response, VISA)


def test_token_create_malformed_json_400_without_number(vault_merchant_client):
    response = vault_merchant_client.post(
        TOKENS_URL, f'{{"card_number": "{VISA}", "exp_month": 12,,}}', content_type="application/json"
    )
    assert response.status_code == 400
    _assert_no_number(response, VISA)


def test_token_create_user_without_merchant_403(cde_client):
    response = cde_client.post(TOKENS_URL, BODY, format="json")
    assert response.status_code == 403
    assert not Card.objects.exists()


def test_token_create_anonymous_401(client):
    assert client.post(TOKENS_URL, BODY, content_type="application/json").status_code == 401
    assert not Card.objects.exists()


def _idempotency_rows(owner_id: int) -> list[list[object]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM fintech_idempotency WHERE owner_id = %s", [owner_id])
        return [values_of_row(row) for row in cursor.fetchall()]


def _owner_id(username: str) -> int:
    return get_user_model().objects.get(username=username).pk


def test_token_create_idempotency_replay_stores_no_number(vault_merchant_client, merchant_id):
    pan = pan_random()
    body = {**BODY, "card_number": grouped(pan, " "), "cardholder_name": "Hanako Sato"}
    # given a tokenisation with an Idempotency-Key
    first = vault_merchant_client.post(TOKENS_URL, body, format="json", HTTP_IDEMPOTENCY_KEY="card-1")
    # when it is retried with the same key and body
    again = vault_merchant_client.post(TOKENS_URL, body, format="json", HTTP_IDEMPOTENCY_KEY="card-1")
    # then the first answer is replayed and one card exists
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Card.objects.filter(token=first.json()["token"]).count() == 1
    # and another body under the same key is refused
    other = vault_merchant_client.post(
        TOKENS_URL, {**body, "card_number": VISA}, format="json", HTTP_IDEMPOTENCY_KEY="card-1"
    )
    assert other.status_code == 422
    # and the stored record, every column, holds no form of the number, nor the name
    [row] = _idempotency_rows(_owner_id(f"user-{merchant_id}"))
    assert not leaks_in_values(row, texts=[*pan_text_forms(pan), "Hanako"], blobs=pan_byte_forms(pan))


def test_token_create_rejected_number_idempotency_record_holds_no_number(vault_merchant_client, merchant_id):
    bad = "4242 4242 4242 4241"
    first = vault_merchant_client.post(
        TOKENS_URL, {**BODY, "card_number": bad}, format="json", HTTP_IDEMPOTENCY_KEY="bad-1"
    )
    again = vault_merchant_client.post(
        TOKENS_URL, {**BODY, "card_number": bad}, format="json", HTTP_IDEMPOTENCY_KEY="bad-1"
    )
    assert first.status_code == again.status_code == 400
    _assert_no_number(again, bad)
    for row in _idempotency_rows(_owner_id(f"user-{merchant_id}")):
        assert not leaks_in_values(row, texts=pan_text_forms(only_digits(bad)), blobs=[])


# detokenise -------------------------------------------------------------------------------------------------
@pytest.fixture
def card(tokenize):
    return tokenize(VISA)


def test_token_detokenize_cde_200_no_store_and_audited(cde_client, card):
    response = cde_client.post(DETOKENIZE_URL.format(token=card.token), {"purpose": "dispute 12"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"card_number": VISA}
    assert "no-store" in response["Cache-Control"]
    [audit] = _audit(card.token)
    assert (audit.actor, audit.purpose, audit.outcome, audit.channel) == ("cde-api", "dispute 12", "granted", "api")
    assert audit.user_id is not None


def test_token_detokenize_trailing_slash_same_rules(cde_client, vault_merchant_client, card):
    url = DETOKENIZE_URL.format(token=card.token) + "/"
    assert cde_client.post(url, {"purpose": "p"}, format="json").json() == {"card_number": VISA}
    refused = vault_merchant_client.post(url, {"purpose": "p"}, format="json")
    assert refused.status_code == 403
    _assert_no_number(refused, VISA)


def test_token_detokenize_merchant_403_and_audited(vault_merchant_client, card):
    # even the merchant that vaulted the card cannot read its number back
    response = vault_merchant_client.post(DETOKENIZE_URL.format(token=card.token), {"purpose": "p"}, format="json")
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    _assert_no_number(response, VISA)
    [audit] = _audit(card.token)
    assert (audit.outcome, audit.actor, audit.channel) == ("denied", f"user-{card.merchant_id}", "api")


@pytest.mark.parametrize("role", ["support", "finance"])
def test_token_detokenize_support_or_finance_403_and_audited(role_client, card, role):
    response = role_client(f"{role}-api", role).post(
        DETOKENIZE_URL.format(token=card.token), {"purpose": "customer called"}, format="json"
    )
    assert response.status_code == 403
    _assert_no_number(response, VISA)
    [audit] = _audit(card.token)
    assert (audit.outcome, audit.actor, audit.purpose) == ("denied", f"{role}-api", "customer called")


def test_token_detokenize_unknown_token_cde_404_and_audited(cde_client):
    token = "tok_unknown000000000000000"
    response = cde_client.post(DETOKENIZE_URL.format(token=token), {"purpose": "p"}, format="json")
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
    assert _audit(token)[0].outcome == "not_found"


def test_token_detokenize_unknown_token_merchant_403(vault_merchant_client):
    token = "tok_unknown000000000000001"
    response = vault_merchant_client.post(DETOKENIZE_URL.format(token=token), {"purpose": "p"}, format="json")
    assert response.status_code == 403
    assert _audit(token)[0].outcome == "denied"


@pytest.mark.parametrize("body", [{}, {"purpose": ""}, {"purpose": "x" * 501}, {"reason": "p"}])
def test_token_detokenize_bad_purpose_cde_400(cde_client, card, body):
    response = cde_client.post(DETOKENIZE_URL.format(token=card.token), body, format="json")
    assert response.status_code == 400
    _assert_no_number(response, VISA)
    assert not DetokenizationAudit.objects.filter(token=card.token, outcome="granted").exists()


@pytest.mark.parametrize("body", [{}, {"purpose": ""}])
def test_token_detokenize_missing_purpose_others_403_and_audited(vault_merchant_client, role_client, card, body):
    for client in (vault_merchant_client, role_client("support-api", "support")):
        response = client.post(DETOKENIZE_URL.format(token=card.token), body, format="json")
        assert response.status_code == 403
        _assert_no_number(response, VISA)
    assert [(a.outcome, a.purpose) for a in _audit(card.token)] == [("denied", ""), ("denied", "")]


def test_token_detokenize_tampered_record_refused_and_audited(cde_client, card):
    with connection.cursor() as cursor:
        cursor.execute(
            # Flip every bit of one byte: writing a fixed byte left the record intact whenever it held that byte.
            "UPDATE vault_card SET number_ciphertext = "
            "set_byte(number_ciphertext, 19, 255 - get_byte(number_ciphertext, 19)) WHERE token = %s",
            [card.token],
        )
    cde_client.raise_request_exception = False
    with transaction.atomic():
        response = cde_client.post(DETOKENIZE_URL.format(token=card.token), {"purpose": "p"}, format="json")
    assert response.status_code != 200
    _assert_no_number(response, VISA)
    assert [a.outcome for a in _audit(card.token)] == ["failed"]


@pytest.mark.parametrize(("client_name", "status", "outcome"), [("cde", 404, "not_found"), ("merchant", 403, "denied")])
def test_token_detokenize_nul_byte_token_answered_and_audited(
    cde_client, vault_merchant_client, client_name, status, outcome
):
    # given a token path holding a NUL byte (PostgreSQL text cannot store one)
    client = cde_client if client_name == "cde" else vault_merchant_client
    client.raise_request_exception = False
    before = DetokenizationAudit.objects.count()
    # when it is detokenised
    with transaction.atomic():
        response = client.post(DETOKENIZE_URL.format(token="tok_%00probe"), {"purpose": "p"}, format="json")
    # then the caller gets the ordinary refusal, and the attempt is audited like any other
    assert response.status_code == status
    assert list(DetokenizationAudit.objects.order_by("id").values_list("outcome", flat=True)[before:]) == [outcome]


def test_token_detokenize_anonymous_401(client, card):
    response = client.post(DETOKENIZE_URL.format(token=card.token), {"purpose": "p"}, content_type="application/json")
    assert response.status_code == 401
    _assert_no_number(response, VISA)


def test_token_detokenize_get_not_allowed(cde_client, card):
    response = cde_client.get(DETOKENIZE_URL.format(token=card.token))
    assert response.status_code == 405
    _assert_no_number(response, VISA)


def test_token_detokenize_not_replayed_from_idempotency_store(cde_client, card):
    # the number is never stored: an Idempotency-Key on detokenise does not make a record of it
    response = cde_client.post(
        DETOKENIZE_URL.format(token=card.token), {"purpose": "p"}, format="json", HTTP_IDEMPOTENCY_KEY="detok-1"
    )
    assert response.json() == {"card_number": VISA}
    assert _idempotency_rows(_owner_id("cde-api")) == []


# the command that makes a CDE operator ----------------------------------------------------------------------
def test_issue_api_token_group_cde_makes_operator_who_detokenizes(card):
    from django.contrib.auth.models import Group

    # given the roles gone, as after a flush
    Group.objects.filter(name="cde").delete()
    # when an operator's token is issued in the cde group
    out = io.StringIO()
    call_command("issue_api_token", "op", "--group", "cde", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    # then that token detokenises, and the operator acts for no merchant
    response = api_client(key).post(DETOKENIZE_URL.format(token=card.token), {"purpose": "ops"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"card_number": VISA}
    assert _audit(card.token)[0].actor == "op"
    assert api_client(key).post(TOKENS_URL, BODY, format="json").status_code == 403


@pytest.mark.parametrize("group", ["support", "finance"])
def test_issue_api_token_other_groups_cannot_detokenize(card, group):
    out = io.StringIO()
    call_command("issue_api_token", f"{group}-op", "--group", group, stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    response = api_client(key).post(DETOKENIZE_URL.format(token=card.token), {"purpose": "ops"}, format="json")
    assert response.status_code == 403
