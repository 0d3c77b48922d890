"""Vault commands: tokenise, detokenise (CDE only, always audited), subject keys, key rotation.

The card number is in plaintext only inside `card_tokenize` and `card_detokenize`, and only in memory.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import secrets
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import tink
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.utils import timezone

from fintech import metrics, policy, timestamps
from fintech.db import own_connection_execute, raw_cursor
from fintech.masking import audit_text
from vault import keys
from vault.domain import (
    CardNumber,
    DetokenizationDenied,
    TokenNotFound,
    VaultError,
    card_number_parse,
    expiry_check,
)
from vault.models import Card, DetokenizationAudit, SubjectKey

DETOKENIZE_PERMISSION = "vault.detokenize"
ROLES = {policy.SUPPORT: [], policy.FINANCE: [], policy.CDE: ["detokenize"], policy.AUDITOR: []}
_TOKEN_ALPHABET = string.ascii_letters + string.digits
TOKEN_PATTERN = re.compile(r"^tok_[A-Za-z0-9]{1,60}$")


class SubjectForgotten(VaultError):
    code = "subject_forgotten"


@dataclass(frozen=True)
class SystemActor:
    """Trusted in-process code acting inside the CDE (the acquirer gateway), not a person."""

    name: str

    def __str__(self) -> str:
        return f"system:{self.name}"


def _token_new() -> str:
    # 24 characters of 62: 142 random bits, unrelated to the number.
    return "tok_" + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(24))


def _blind_index(*, merchant_id: str, number: CardNumber) -> bytes:
    data = f"card:{merchant_id}:{number.digits}".encode()
    return keys.key_provider().prf("card-index").compute(data, 32)


def _card_context(token: str, field: str) -> bytes:
    return f"vault.card:{token}:{field}".encode()


def _counted(counter):
    """Count each call that returns (for /metrics)."""

    def wrap(function):
        @functools.wraps(function)
        def counted(*args, **kwargs):
            result = function(*args, **kwargs)
            counter.inc()
            return result

        return counted

    return wrap


@_counted(metrics.VAULT_TOKENISATIONS)
def card_tokenize(
    *,
    card_number: str,
    exp_month: int,
    exp_year: int,
    merchant_id: str,
    cardholder_name: str | None = None,
    today: dt.date | None = None,
) -> Card:
    """Vault a card for a merchant and return its record; the same card in the same scope keeps its token
    (expiry and name are refreshed)."""
    number = card_number_parse(card_number)
    exp_month, exp_year = expiry_check(exp_month, exp_year, today=today or timestamps.today())
    index = _blind_index(merchant_id=merchant_id, number=number)
    existing = Card.objects.filter(merchant_id=merchant_id, blind_index=index).first()
    if existing is not None:
        return _card_refresh(existing, exp_month=exp_month, exp_year=exp_year, cardholder_name=cardholder_name)
    token = _token_new()
    provider = keys.key_provider()
    dek, dek_keyset = keys.dek_new()
    wrapped = keys.dek_wrap(provider, dek_keyset, context=_card_context(token, "key"))
    card = Card(
        token=token,
        merchant_id=merchant_id,
        blind_index=index,
        wrapped_key=wrapped,
        kek_key_id=keys.key_id_of(wrapped),
        number_ciphertext=dek.encrypt(number.digits.encode(), _card_context(token, "number")),
        name_ciphertext=_name_encrypt(dek, token, cardholder_name),
        brand=number.brand,
        last4=number.last4,
        masked=number.masked,
        exp_month=exp_month,
        exp_year=exp_year,
    )
    try:
        with transaction.atomic():
            card.save(force_insert=True)
    except IntegrityError:
        # The same card vaulted concurrently in the same scope: theirs wins, one token per card.
        return Card.objects.get(merchant_id=merchant_id, blind_index=index)
    return card


def _name_encrypt(dek, token: str, name: str | None) -> bytes | None:
    return None if name is None else dek.encrypt(name.encode(), _card_context(token, "name"))


def _card_refresh(card: Card, *, exp_month: int, exp_year: int, cardholder_name: str | None) -> Card:
    changed = (card.exp_month, card.exp_year) != (exp_month, exp_year)
    card.exp_month, card.exp_year = exp_month, exp_year
    if cardholder_name is not None:
        dek = keys.dek_unwrap(keys.key_provider(), bytes(card.wrapped_key), context=_card_context(card.token, "key"))
        card.name_ciphertext = _name_encrypt(dek, card.token, cardholder_name)
        changed = True
    if changed:
        card.save(update_fields=["exp_month", "exp_year", "name_ciphertext", "updated_at"])
    return card


def may_detokenize(actor) -> bool:
    """Whether an actor may see card numbers: trusted in-process code, or a user the access policy lets
    detokenise (the CDE role; being a superuser is not enough)."""
    return isinstance(actor, SystemActor) or policy.may_detokenize(actor)


def _audit(*, actor, token: str, purpose: str, outcome: str, channel: str) -> None:
    metrics.VAULT_DETOKENISATIONS.labels(outcome=outcome, channel=channel).inc()
    # On a connection of its own, committed before the number is handed out: the caller's transaction may
    # still roll back (a 409, a 502 from the acquirer, an idempotency rollback), and the decryption it would
    # take with it really happened. Every authorization writes one: fixed SQL rather than the ORM.
    own_connection_execute(
        "INSERT INTO vault_detokenizationaudit (occurred_at, actor, user_id, token, purpose, outcome, channel) "
        "VALUES (now(), %s, %s, %s, %s, %s, %s)",
        [
            audit_text(getattr(actor, "username", None) or actor, 150),
            getattr(actor, "pk", None),
            str(token) if TOKEN_PATTERN.match(str(token)) else audit_text(token, 64),
            audit_text(purpose, 500),
            outcome,
            channel,
        ],
    )


def card_detokenize(*, token: str, purpose: str, actor, channel: str = "api") -> str:
    """The card number behind a token, for an actor holding vault.detokenize (the CDE role). Every attempt,
    refused or failed ones included, leaves an audit row, committed before this returns or raises even when
    the caller's transaction later rolls back."""
    if not may_detokenize(actor):
        _audit(actor=actor, token=token, purpose=purpose, outcome=DetokenizationAudit.DENIED, channel=channel)
        raise DetokenizationDenied("detokenisation needs the CDE role")
    card = _card_secrets(token) if TOKEN_PATTERN.match(str(token)) else None
    if card is None:
        _audit(actor=actor, token=token, purpose=purpose, outcome=DetokenizationAudit.NOT_FOUND, channel=channel)
        raise TokenNotFound("no such token")
    try:
        number = _card_number(card)
    except (tink.TinkError, keys.VaultKeyError):
        _audit(actor=actor, token=token, purpose=purpose, outcome=DetokenizationAudit.FAILED, channel=channel)
        raise
    _audit(actor=actor, token=token, purpose=purpose, outcome=DetokenizationAudit.GRANTED, channel=channel)
    return number


@dataclass(frozen=True)
class _CardSecrets:
    token: str
    wrapped_key: bytes
    number_ciphertext: bytes


def _card_secrets(token: str) -> _CardSecrets | None:
    with raw_cursor() as cursor:
        cursor.execute("SELECT token, wrapped_key, number_ciphertext FROM vault_card WHERE token = %s", [token])
        row = cursor.fetchone()
    return None if row is None else _CardSecrets(row[0], bytes(row[1]), bytes(row[2]))


def _card_number(card: _CardSecrets) -> str:
    dek = keys.dek_unwrap(keys.key_provider(), card.wrapped_key, context=_card_context(card.token, "key"))
    return dek.decrypt(card.number_ciphertext, _card_context(card.token, "number")).decode()


def card_cardholder_name(*, card: Card) -> str | None:
    """The decrypted cardholder name (PII, not card data: no CDE role needed)."""
    if card.name_ciphertext is None:
        return None
    dek = keys.dek_unwrap(keys.key_provider(), bytes(card.wrapped_key), context=_card_context(card.token, "key"))
    return dek.decrypt(bytes(card.name_ciphertext), _card_context(card.token, "name")).decode()


# subjects and their PII ------------------------------------------------------------------------------------
def _subject_context(subject_id: str) -> bytes:
    return f"vault.subject:{subject_id}".encode()


def subject_key(*, subject_id: str, create: bool = False):
    """The AEAD of a data subject's key; created on first use when `create`. Raises SubjectForgotten."""
    record = SubjectKey.objects.filter(subject_id=subject_id).first()
    if record is None and create:
        provider = keys.key_provider()
        _, keyset_bytes = keys.dek_new()
        wrapped = keys.dek_wrap(provider, keyset_bytes, context=_subject_context(subject_id))
        SubjectKey.objects.bulk_create(
            [SubjectKey(subject_id=subject_id, wrapped_key=wrapped, kek_key_id=keys.key_id_of(wrapped))],
            ignore_conflicts=True,
        )
        record = SubjectKey.objects.get(subject_id=subject_id)
    if record is None or record.wrapped_key is None:
        raise SubjectForgotten(f"the data of subject {subject_id} is forgotten or was never stored")
    return keys.dek_unwrap(keys.key_provider(), bytes(record.wrapped_key), context=_subject_context(subject_id))


def subject_forget(*, subject_id: str) -> tuple[bool, int]:
    """Crypto-shred a subject: destroy their data key so every ciphertext of their PII becomes unreadable, in
    tables and in immutable events alike, and clear the blind indexes that could still find them. Returns
    (whether a key was destroyed, how many blind indexes were cleared); running it again is harmless."""
    from vault.fields import subject_blind_indexes_erase  # fields import these services

    with transaction.atomic():
        destroyed = SubjectKey.objects.filter(subject_id=subject_id, wrapped_key__isnull=False).update(
            wrapped_key=None, kek_key_id=None, forgotten_at=timezone.now()
        )
        if not destroyed:
            SubjectKey.objects.get_or_create(subject_id=subject_id, defaults={"forgotten_at": timezone.now()})
        return bool(destroyed), subject_blind_indexes_erase(subject_id=subject_id)


# roles -------------------------------------------------------------------------------------------------------
def role_groups_ensure() -> None:
    """The support, finance, cde and auditor groups, cde alone holding vault.detokenize."""
    content_type = ContentType.objects.get_for_model(Card)
    detokenize, _ = Permission.objects.get_or_create(
        content_type=content_type, codename="detokenize", defaults={"name": "Can see card numbers (the CDE role)"}
    )
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        if "detokenize" in codenames:
            group.permissions.add(detokenize)


# key rotation --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Wrapped:
    model: type
    pk_field: str
    context: Callable[[str], bytes]


_WRAPPED = [
    _Wrapped(Card, "token", lambda token: _card_context(token, "key")),
    _Wrapped(SubjectKey, "subject_id", _subject_context),
]


def sealed_register(*, model: type, pk_field: str, context: Callable[[str], bytes]) -> None:
    """Another app's table of secrets sealed by secret_seal (columns `wrapped_key` and `kek_key_id`): key rotation
    re-seals its rows under the new primary, and no KEK key that still seals one of them is retired."""
    if not any(wrapped.model is model for wrapped in _WRAPPED):
        _WRAPPED.append(_Wrapped(model, pk_field, context))


def secret_seal(*, secret: bytes, context: bytes) -> tuple[bytes, int]:
    """A secret another app must read back (a webhook signing key), sealed under the KEK and bound to `context`:
    (sealed bytes, the KEK key id). Its table is registered with sealed_register, so that rotation covers it."""
    sealed = keys.dek_wrap(keys.key_provider(), secret, context=context)
    return sealed, keys.key_id_of(sealed)


def secret_open(*, sealed: bytes, context: bytes) -> bytes:
    """The secret secret_seal sealed under this context; VaultKeyError for another context, altered bytes or a
    retired KEK key."""
    return keys.dek_unwrap_bytes(keys.key_provider(), bytes(sealed), context=context)


def keys_pending_count(*, primary: int) -> int:
    """Data keys still wrapped by a KEK key other than the primary."""
    return sum(w.model.objects.exclude(kek_key_id=primary).exclude(kek_key_id__isnull=True).count() for w in _WRAPPED)


def keys_rewrap(*, batch_size: int = 500) -> Iterator[int]:
    """Re-wrap every data key under the KEK's primary key, a batch per transaction; yields the number done
    after each batch. Safe to interrupt and run again: it picks up whatever is not on the primary yet."""
    provider = keys.key_provider()
    primary = provider.primary_key_id()
    provider.prf_keys_rewrap()
    for wrapped in _WRAPPED:
        while True:
            with transaction.atomic():
                rows = list(
                    wrapped.model.objects.select_for_update()
                    .exclude(kek_key_id=primary)
                    .exclude(kek_key_id__isnull=True)
                    .order_by(wrapped.pk_field)[:batch_size]
                )
                if not rows:
                    break
                for row in rows:
                    context = wrapped.context(getattr(row, wrapped.pk_field))
                    plain = keys.dek_unwrap_bytes(provider, bytes(row.wrapped_key), context=context)
                    row.wrapped_key = keys.dek_wrap(provider, plain, context=context)
                    row.kek_key_id = keys.key_id_of(row.wrapped_key)
                wrapped.model.objects.bulk_update(rows, ["wrapped_key", "kek_key_id"])
            yield len(rows)


def keys_in_use() -> set[int]:
    used: set[int] = set()
    for wrapped in _WRAPPED:
        used.update(
            wrapped.model.objects.exclude(kek_key_id__isnull=True).values_list("kek_key_id", flat=True).distinct()
        )
    return used


def keys_retire() -> set[int]:
    """Remove every KEK key that is not the primary and wraps nothing; returns their ids. Refuses while a
    record still depends on one (finish the rotation first)."""
    provider = keys.key_provider()
    primary = provider.primary_key_id()
    old = set(provider.key_ids()) - {primary}
    still_used = old & keys_in_use()
    if still_used:
        raise keys.VaultKeyError(f"{len(still_used)} old key(s) still wrap data keys: run rotate_keys --resume first")
    if old:
        provider.retire(old)
    return old
