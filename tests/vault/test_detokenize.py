"""card_detokenize: the CDE role only, every attempt audited, tampered records refused, the audit append-only."""

import contextlib
import uuid

import pytest
import tink
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError, connection, transaction

from fintech.db import OWN_CONNECTION_NAME, own_connection_close
from tests.vault.helpers import VISA, pan_random
from vault import keys, services
from vault.domain import DetokenizationDenied, TokenNotFound
from vault.models import DetokenizationAudit

pytestmark = pytest.mark.django_db

TAMPERED = (tink.TinkError, keys.VaultKeyError)


def _audit(token: str) -> list[DetokenizationAudit]:
    return list(DetokenizationAudit.objects.filter(token=token).order_by("id"))


# the CDE role -----------------------------------------------------------------------------------------------
def test_detokenize_cde_user_gets_number_and_granted_audit(tokenize, cde_user):
    # given a vaulted card and a user in the cde group
    card = tokenize(VISA)
    # when the user detokenises it
    number = services.card_detokenize(token=card.token, purpose="chargeback 881", actor=cde_user)
    # then the number comes back and the attempt is recorded: who, what, why, through which channel
    assert number == VISA
    [audit] = _audit(card.token)
    assert (audit.actor, audit.user_id, audit.token, audit.purpose, audit.outcome, audit.channel) == (
        "cde-operator",
        cde_user.pk,
        card.token,
        "chargeback 881",
        DetokenizationAudit.GRANTED,
        "api",
    )
    assert audit.occurred_at is not None


def test_detokenize_channel_recorded(tokenize, cde_user):
    card = tokenize(VISA)
    services.card_detokenize(token=card.token, purpose="batch", actor=cde_user, channel="admin")
    assert _audit(card.token)[0].channel == "admin"


@pytest.mark.parametrize("roles", [(), ("support",), ("finance",), ("support", "finance")])
def test_detokenize_without_permission_denied_and_audited(tokenize, user_in_roles, roles):
    # given a user outside the cde group
    card = tokenize(VISA)
    user = user_in_roles("someone", *roles)
    # when they try to detokenise
    with pytest.raises(DetokenizationDenied) as raised:
        services.card_detokenize(token=card.token, purpose="curious", actor=user)
    # then they are refused, the refusal is recorded, and the message holds no number
    assert VISA not in str(raised.value)
    [audit] = _audit(card.token)
    assert (audit.actor, audit.user_id, audit.outcome, audit.purpose) == (
        "someone",
        user.pk,
        DetokenizationAudit.DENIED,
        "curious",
    )


@pytest.mark.parametrize("actor", [AnonymousUser(), None, "user:someone", services.SystemActor("other")])
def test_detokenize_other_actors_checked_by_permission(tokenize, actor):
    # the system actor of the CDE holds the permission; anything without has_perm, or anonymous, does not
    card = tokenize(VISA)
    if isinstance(actor, services.SystemActor):
        assert services.card_detokenize(token=card.token, purpose="p", actor=actor) == VISA
        assert _audit(card.token)[0].actor == "system:other"
        return
    with pytest.raises(DetokenizationDenied):
        services.card_detokenize(token=card.token, purpose="p", actor=actor)
    assert _audit(card.token)[0].outcome == DetokenizationAudit.DENIED


def test_detokenize_permission_taken_away_denied(tokenize, user_in_roles):
    from django.contrib.auth.models import Group

    card = tokenize(VISA)
    user = user_in_roles("leaver", "cde")
    assert services.card_detokenize(token=card.token, purpose="before", actor=user) == VISA
    user.groups.remove(Group.objects.get(name="cde"))
    user = type(user).objects.get(pk=user.pk)
    with pytest.raises(DetokenizationDenied):
        services.card_detokenize(token=card.token, purpose="after", actor=user)
    assert [a.outcome for a in _audit(card.token)] == [DetokenizationAudit.GRANTED, DetokenizationAudit.DENIED]


def _unknown_token() -> str:
    # Audit rows outlive every test (committed on their own connection, never flushed): a token of its own.
    return f"tok_unknown{uuid.uuid4().hex}"


def test_detokenize_unknown_token_not_found_and_audited(cde_user):
    token = _unknown_token()
    with pytest.raises(TokenNotFound):
        services.card_detokenize(token=token, purpose="lookup", actor=cde_user)
    [audit] = _audit(token)
    assert (audit.outcome, audit.actor, audit.purpose) == (DetokenizationAudit.NOT_FOUND, "cde-operator", "lookup")


def test_detokenize_unknown_token_without_permission_denied_first(user_in_roles):
    # an outsider learns nothing, not even whether the token exists
    token = _unknown_token()
    with pytest.raises(DetokenizationDenied):
        services.card_detokenize(token=token, purpose="probe", actor=user_in_roles("prober"))
    assert _audit(token)[0].outcome == DetokenizationAudit.DENIED


def test_detokenize_every_length_of_number_round_trips(tokenize, cde_user):
    for length in (12, 15, 16, 19):
        pan = pan_random(length)
        card = tokenize(pan)
        assert services.card_detokenize(token=card.token, purpose="check", actor=cde_user) == pan


# tampering ----------------------------------------------------------------------------------------------
def _column(token: str, column: str) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM vault_card WHERE token = %s", [token])  # noqa: S608
        return bytes(cursor.fetchone()[0])


def _set_column(token: str, column: str, value: bytes) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE vault_card SET {column} = %s WHERE token = %s", [value, token])  # noqa: S608


@pytest.mark.parametrize("position", [0, 1, 5, 17, -17, -1])
def test_detokenize_flipped_ciphertext_byte_fails_and_audited(tokenize, cde_user, position):
    # given a card whose number ciphertext has one byte flipped in the database
    card = tokenize(VISA)
    ciphertext = bytearray(_column(card.token, "number_ciphertext"))
    ciphertext[position] ^= 0x01
    _set_column(card.token, "number_ciphertext", bytes(ciphertext))
    # when it is detokenised, then decryption fails, without the number in the error
    with pytest.raises(TAMPERED) as raised:
        services.card_detokenize(token=card.token, purpose="tamper", actor=cde_user)
    assert VISA not in str(raised.value)
    # and the failure is audited
    assert [a.outcome for a in _audit(card.token)] == [DetokenizationAudit.FAILED]


def test_detokenize_swapped_number_ciphertexts_both_fail(tokenize, cde_user):
    # given two cards whose number ciphertexts were swapped by raw SQL
    first, second = tokenize(VISA), tokenize(pan_random())
    one, two = _column(first.token, "number_ciphertext"), _column(second.token, "number_ciphertext")
    _set_column(first.token, "number_ciphertext", two)
    _set_column(second.token, "number_ciphertext", one)
    # then neither decrypts (each is bound to its own data key and token)
    for card in (first, second):
        with pytest.raises(TAMPERED):
            services.card_detokenize(token=card.token, purpose="swap", actor=cde_user)
        assert _audit(card.token)[0].outcome == DetokenizationAudit.FAILED


def test_detokenize_swapped_number_and_key_together_fail(tokenize, cde_user):
    # given a record's whole ciphertext and wrapped key moved into another row: the token binds them
    first, second = tokenize(VISA), tokenize(pan_random())
    for column in ("number_ciphertext", "wrapped_key"):
        _set_column(second.token, column, _column(first.token, column))
    with pytest.raises(TAMPERED):
        services.card_detokenize(token=second.token, purpose="swap", actor=cde_user)


def test_detokenize_swapped_wrapped_keys_fail(tokenize, cde_user):
    first, second = tokenize(VISA), tokenize(pan_random())
    one, two = _column(first.token, "wrapped_key"), _column(second.token, "wrapped_key")
    _set_column(first.token, "wrapped_key", two)
    _set_column(second.token, "wrapped_key", one)
    for card in (first, second):
        with pytest.raises(TAMPERED):
            services.card_detokenize(token=card.token, purpose="swap", actor=cde_user)
        assert _audit(card.token)[0].outcome == DetokenizationAudit.FAILED


def test_detokenize_flipped_wrapped_key_byte_fails(tokenize, cde_user):
    card = tokenize(VISA)
    wrapped = bytearray(_column(card.token, "wrapped_key"))
    wrapped[len(wrapped) // 2] ^= 0x80
    _set_column(card.token, "wrapped_key", bytes(wrapped))
    with pytest.raises(TAMPERED):
        services.card_detokenize(token=card.token, purpose="tamper", actor=cde_user)
    assert _audit(card.token)[0].outcome == DetokenizationAudit.FAILED


def test_cardholder_name_swapped_between_rows_fails(tokenize):
    first = tokenize(VISA, cardholder_name="Hanako Sato")
    second = tokenize(pan_random(), cardholder_name="Taro Yamada")
    _set_column(second.token, "name_ciphertext", _column(first.token, "name_ciphertext"))
    second.refresh_from_db()
    with pytest.raises(TAMPERED):
        services.card_cardholder_name(card=second)


# the audit is append-only ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE vault_detokenizationaudit SET outcome = 'denied' WHERE token = %s",
        "UPDATE vault_detokenizationaudit SET purpose = 'nothing to see' WHERE token = %s",
        "DELETE FROM vault_detokenizationaudit WHERE token = %s",
        "TRUNCATE vault_detokenizationaudit",
    ],
)
def test_audit_rewrite_rejected_by_database(tokenize, cde_user, statement):
    # given an audited detokenisation
    card = tokenize(VISA)
    services.card_detokenize(token=card.token, purpose="refund 3", actor=cde_user)
    # when any client rewrites or removes audit rows with SQL, then the database refuses
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [card.token] if "%s" in statement else None)
    # and the row is as it was
    [audit] = _audit(card.token)
    assert (audit.outcome, audit.purpose) == (DetokenizationAudit.GRANTED, "refund 3")


def test_audit_orm_update_and_delete_rejected(tokenize, cde_user):
    card = tokenize(VISA)
    services.card_detokenize(token=card.token, purpose="refund 4", actor=cde_user)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        DetokenizationAudit.objects.filter(token=card.token).update(outcome=DetokenizationAudit.DENIED)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        DetokenizationAudit.objects.filter(token=card.token).delete()
    assert _audit(card.token)[0].outcome == DetokenizationAudit.GRANTED


# the audit outlives the caller's transaction ------------------------------------------------------------------
class _CallerFailed(Exception):
    pass


@pytest.mark.parametrize("outcome", ["granted", "denied", "not_found"])
def test_audit_row_survives_the_callers_rollback(tokenize, cde_user, user_in_roles, outcome):
    # given a detokenisation inside a transaction that then rolls back
    card = tokenize(VISA)
    token = _unknown_token() if outcome == "not_found" else card.token
    actor = user_in_roles("outsider") if outcome == "denied" else cde_user

    def caller():
        with transaction.atomic():
            with contextlib.suppress(DetokenizationDenied, TokenNotFound):
                services.card_detokenize(token=token, purpose="rolled back", actor=actor)
            raise _CallerFailed

    with pytest.raises(_CallerFailed):
        caller()
    # then the attempt is still on record
    assert [(a.outcome, a.purpose) for a in _audit(token)] == [(outcome, "rolled back")]


def _own_connections() -> list[int]:
    with connection.cursor() as cursor:
        # The statistics views are read once per transaction unless told otherwise.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
            [OWN_CONNECTION_NAME],
        )
        return [pid for (pid,) in cursor.fetchall()]


def test_audit_connection_opened_only_when_an_audit_is_written(tokenize, cde_user):
    # given no audit connection on this thread
    own_connection_close()
    # when cards are vaulted and read without detokenising, then none is opened
    card = tokenize(VISA)
    services.card_cardholder_name(card=card)
    assert _own_connections() == []
    # and the first detokenisation opens one, which the next ones reuse
    services.card_detokenize(token=card.token, purpose="first", actor=cde_user)
    [pid] = _own_connections()
    services.card_detokenize(token=card.token, purpose="second", actor=cde_user)
    assert _own_connections() == [pid]


def test_audit_connection_dropped_by_the_server_is_replaced(tokenize, cde_user):
    # given the thread's audit connection, terminated by the server since its last use
    card = tokenize(VISA)
    services.card_detokenize(token=card.token, purpose="before", actor=cde_user)
    [pid] = _own_connections()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
    # when the next detokenisation is audited, then it is written on a new connection
    services.card_detokenize(token=card.token, purpose="after", actor=cde_user)
    assert [a.purpose for a in _audit(card.token)] == ["before", "after"]
    assert len(_own_connections()) == 1
    assert _own_connections() != [pid]
