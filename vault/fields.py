"""Encrypted model fields for personal data (PII), usable by any app, and blind indexes for exact lookups.

Each value is encrypted with AES-256-GCM under the data key of its *subject* (the person it is about), so
`manage.py forget_subject` destroys one key and that person's PII becomes unreadable in every table and every
immutable event at once (crypto-shredding). KEK rotation re-wraps subject keys only: ciphertexts never change.

Stored bytes: b"v1:" + subject id + b":" + Tink ciphertext. The associated data binds the ciphertext to the
model, the field, the subject and the row's primary key, so a ciphertext copied to another field, row or subject
fails to decrypt (EncryptedValueError), never yielding someone else's data.

Decryption is lazy and needs the model instance: `from_db_value` only parses the header (a `Sealed` value), and
the attribute opens it on first access, after checking that the header names the row's own subject. Reading a
list of rows therefore unwraps no key, and `values()` / `values_list()` return `Sealed` values, not plaintext.
The Python attribute holds plaintext; the database, `dumpdata` and `value_to_string` see only ciphertext.

Queries cannot compare randomized ciphertexts: every lookup except `isnull` raises FieldError. Exact lookups
go through a BlindIndexField (a keyed HMAC of the normalised plaintext) and `blind_index()`.
`QuerySet.update()` and `bulk_update()` cannot encrypt (they never see the instance) and raise rather than
write plaintext: change PII through `save()`. A BlindIndexField is refreshed on `save()`; when saving with
`update_fields`, name the index together with its source field.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import tink
from django import forms
from django.core import checks
from django.core.exceptions import FieldError, ValidationError
from django.db import models
from django.db.models.fields import AutoFieldMixin
from django.db.models.functions import Cast
from django.db.models.query_utils import DeferredAttribute

from vault.domain import VaultError

_FORMAT = b"v1"
_SUBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_CONTEXT = re.compile(r"^[a-z0-9_.]{1,100}$")
_NOT_LOADED = object()
_KEPT = "_vault_sealed"  # per-instance: {attname: _Kept}, what the row holds for the plaintext it was opened to


class EncryptedValueError(VaultError):
    """A stored ciphertext that cannot be opened for this row: tampered, moved from another field, row or
    subject, or its subject never had a key. Never raised for a forgotten subject (those read as None)."""

    code = "encrypted_value_invalid"


@dataclass(frozen=True)
class Sealed:
    """A stored ciphertext with the subject id of its header; its repr shows no bytes."""

    subject_id: str
    ciphertext: bytes

    def __repr__(self) -> str:
        return f"Sealed(subject_id={self.subject_id!r})"

    def to_bytes(self) -> bytes:
        return _FORMAT + b":" + self.subject_id.encode() + b":" + self.ciphertext

    @classmethod
    def from_bytes(cls, data: bytes) -> Sealed:
        version, separator, rest = data.partition(b":")
        subject_id, separator_2, ciphertext = rest.partition(b":")
        if version != _FORMAT or not separator or not separator_2 or not ciphertext:
            raise EncryptedValueError("not an encrypted value of a known format")
        return cls(subject_id.decode("ascii", errors="replace"), ciphertext)


@dataclass(frozen=True)
class _Kept:
    plaintext: Any
    sealed: Sealed
    pk: str


def subject_id_check(subject_id: str) -> str:
    """A subject id usable in the stored header and the vault's key table (no ':', at most 64 characters)."""
    if not isinstance(subject_id, str) or not _SUBJECT_ID.match(subject_id):
        raise ValueError("a subject id is 1-64 letters, digits and _ . @ - (a UUID or a slug)")
    return subject_id


def _subject_aead(subject_id: str):
    """The subject's AEAD, or None when the subject is forgotten. A subject that never had a key while a
    ciphertext names it is an error, not a forgotten person."""
    from vault import services
    from vault.models import SubjectKey

    try:
        return services.subject_key(subject_id=subject_id)
    except services.SubjectForgotten:
        if SubjectKey.objects.filter(subject_id=subject_id, forgotten_at__isnull=False).exists():
            return None
        raise EncryptedValueError(f"subject {subject_id} has no data key") from None


class _EncryptedAttribute(DeferredAttribute):
    """Opens the stored ciphertext on first read, with the instance at hand (row and subject checks)."""

    def __get__(self, instance, cls=None):
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, Sealed):
            _instance_open(instance, self.field)
            value = instance.__dict__[self.field.attname]
        return value

    def __set__(self, instance, value) -> None:
        instance.__dict__[self.field.attname] = value


def _encrypted_fields(instance) -> list[EncryptedField]:
    return [field for field in instance._meta.concrete_fields if isinstance(field, EncryptedField)]


def _instance_open(instance, requested: EncryptedField) -> None:
    """Decrypt every still-sealed encrypted field of an instance, fetching each subject's key once. Raises
    only for the requested field; another field that fails stays sealed and raises when it is read."""
    aeads: dict[str, Any] = {}
    kept = instance.__dict__.setdefault(_KEPT, {})
    for field in _encrypted_fields(instance):
        sealed = instance.__dict__.get(field.attname)
        if not isinstance(sealed, Sealed):
            continue
        try:
            plaintext = field.open(instance, sealed, aeads)
        except EncryptedValueError:
            if field is requested:
                raise
            continue
        instance.__dict__[field.attname] = plaintext
        kept[field.attname] = _Kept(plaintext, sealed, str(instance.pk))


def _instance_seal(instance) -> dict[str, _Kept]:
    """The ciphertext of every loaded encrypted field of an instance, encrypting only what changed since it
    was read or last sealed (each subject's key fetched once, created on first use)."""
    aeads: dict[str, Any] = {}
    kept = instance.__dict__.setdefault(_KEPT, {})
    for field in _encrypted_fields(instance):
        if field.attname not in instance.__dict__:
            continue  # deferred: not loaded, so not saved either
        value = instance.__dict__[field.attname]
        if isinstance(value, Sealed):
            field.check_subject(instance, value)
            continue
        previous = kept.get(field.attname)
        if previous is not None and field.still_valid(instance, previous, value):
            continue
        if value is None:
            kept.pop(field.attname, None)
            continue
        kept[field.attname] = _Kept(value, field.seal(instance, value, aeads), str(instance.pk))
    return kept


class EncryptedField(models.BinaryField):
    """Base of the PII fields: plaintext in Python, `v1:<subject>:<AES-256-GCM ciphertext>` in the database.

    `subject_field` names the model attribute holding the subject id (e.g. "id" for a customer, "customer_id"
    for their address). The model's primary key must be known before the insert (a UUID default) since the
    ciphertext is bound to its row.
    """

    descriptor_class = _EncryptedAttribute
    empty_strings_allowed = True

    def __init__(self, *args, subject_field: str = "id", **kwargs) -> None:
        self.subject_field = subject_field
        kwargs.setdefault("editable", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("editable", None)
        if not self.editable:
            kwargs["editable"] = False
        kwargs["subject_field"] = self.subject_field
        return name, path, args, kwargs

    def check(self, **kwargs):
        return [*super().check(**kwargs), *self._check_subject_field(), *self._check_primary_key()]

    def _check_subject_field(self):
        if self.subject_field == "pk" or any(
            self.subject_field in (field.name, field.attname) for field in self.model._meta.concrete_fields
        ):
            return []
        return [
            checks.Error(f"subject_field {self.subject_field!r} is not a field of the model", obj=self, id="vault.E001")
        ]

    def _check_primary_key(self):
        if isinstance(self.model._meta.pk, AutoFieldMixin):
            return [
                checks.Error(
                    "encrypted fields bind ciphertexts to their row: the primary key must be set before the insert",
                    hint="use UUIDField(primary_key=True, default=uuid.uuid4)",
                    obj=self,
                    id="vault.E002",
                )
            ]
        return []

    # plaintext <-> text, per concrete field -------------------------------------------------------------------
    def plaintext_to_text(self, value) -> str:
        raise NotImplementedError

    def text_to_plaintext(self, text: str):
        raise NotImplementedError

    # encryption -------------------------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        return f"{self.model._meta.label_lower}.{self.name}"

    def associated_data(self, subject_id: str, pk: str) -> bytes:
        return f"vault.pii:v1:{self.model._meta.label_lower}:{self.name}:{subject_id}:{pk}".encode()

    def subject_of(self, instance) -> str:
        subject = getattr(instance, self.subject_field)
        if subject is None:
            raise ValueError(f"{self.label}: the subject ({self.subject_field}) is not set")
        return subject_id_check(str(subject))

    def check_subject(self, instance, sealed: Sealed) -> None:
        if sealed.subject_id != self.subject_of(instance):
            raise EncryptedValueError(f"{self.label} of row {instance.pk} holds a ciphertext of another subject")

    def seal(self, instance, value, aeads: dict[str, Any]) -> Sealed:
        if instance.pk is None:
            raise ValueError(f"{self.label}: set the primary key before saving (the ciphertext is bound to it)")
        subject_id = self.subject_of(instance)
        if subject_id not in aeads:
            from vault import services

            aeads[subject_id] = services.subject_key(subject_id=subject_id, create=True)
        plaintext = self.plaintext_to_text(self.to_python(value)).encode()
        ciphertext = aeads[subject_id].encrypt(plaintext, self.associated_data(subject_id, str(instance.pk)))
        return Sealed(subject_id, ciphertext)

    def open(self, instance, sealed: Sealed, aeads: dict[str, Any]):
        """The plaintext of this row's ciphertext; None when the subject is forgotten."""
        self.check_subject(instance, sealed)
        if sealed.subject_id not in aeads:
            aeads[sealed.subject_id] = _subject_aead(sealed.subject_id)
        aead = aeads[sealed.subject_id]
        if aead is None:
            return None
        try:
            plaintext = aead.decrypt(sealed.ciphertext, self.associated_data(sealed.subject_id, str(instance.pk)))
        except tink.TinkError:
            raise EncryptedValueError(
                f"{self.label} of row {instance.pk} does not decrypt: tampered, or moved from another field or row"
            ) from None
        return self.text_to_plaintext(plaintext.decode())

    def still_valid(self, instance, kept: _Kept, value) -> bool:
        """Whether the ciphertext kept for this attribute still stands for its current value and row."""
        return (
            kept.plaintext == value
            and kept.pk == str(instance.pk)
            and kept.sealed.subject_id == self.subject_of(instance)
        )

    # Django hooks -----------------------------------------------------------------------------------------------
    def get_internal_type(self) -> str:
        return "BinaryField"

    def get_default(self):
        return models.Field.get_default(self)  # not BinaryField's b"": the default is a plaintext

    def db_check(self, connection):
        # The database itself refuses anything but the sealed format in this column.
        if connection.vendor != "postgresql":
            return None
        column = connection.ops.quote_name(self.column)
        return f"substring({column} from 1 for 3) = '\\x76313a'::bytea"

    def from_db_value(self, value, expression, connection):
        return None if value is None else Sealed.from_bytes(bytes(value))

    def pre_save(self, model_instance, add):
        value = model_instance.__dict__.get(self.attname)
        if isinstance(value, Sealed):
            self.check_subject(model_instance, value)
            return value.to_bytes()
        kept = _instance_seal(model_instance).get(self.attname)
        return None if kept is None else kept.sealed.to_bytes()

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        if isinstance(value, Sealed):
            value = value.to_bytes()
        if isinstance(value, bytes | memoryview) and bytes(value[:3]) == _FORMAT + b":":
            return connection.Database.Binary(bytes(value))
        # Only pre_save (which has the instance) can encrypt; never let plaintext reach the database.
        raise TypeError(f"{self.label} stores ciphertext only: change it on an instance and save() it")

    def get_lookup(self, lookup_name):
        if lookup_name == "isnull":
            return super().get_lookup(lookup_name)
        raise FieldError(
            f"{self.label} is encrypted with random nonces: it cannot be filtered with '{lookup_name}' "
            "(only isnull); look up by a blind index instead"
        )

    def get_transform(self, lookup_name):
        raise FieldError(f"{self.label} is encrypted: no transform ('{lookup_name}') applies to it")

    def value_from_object(self, obj):
        # A string, never a date: serializers pass dates through as they are but call value_to_string for
        # strings, and forms take the ISO text as initial data.
        value = getattr(obj, self.attname)
        return None if value is None else self.plaintext_to_text(value)

    def value_to_string(self, obj) -> str | None:
        """The stored ciphertext in base64 (dumpdata, serializers): never the plaintext."""
        if self.attname not in obj.__dict__:
            getattr(obj, self.attname)  # load a deferred value
        value = obj.__dict__[self.attname]
        if isinstance(value, Sealed):
            return base64.b64encode(value.to_bytes()).decode("ascii")
        kept = _instance_seal(obj).get(self.attname)
        return None if kept is None else base64.b64encode(kept.sealed.to_bytes()).decode("ascii")


class EncryptedTextField(EncryptedField):
    """Encrypted text (names, e-mail addresses, phone numbers, postal addresses)."""

    description = "Text encrypted under its subject's key"

    def plaintext_to_text(self, value) -> str:
        return str(value)

    def text_to_plaintext(self, text: str) -> str:
        return text

    def to_python(self, value):
        if value is None or isinstance(value, str | Sealed):
            return value
        return str(value)

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": forms.CharField, "widget": forms.Textarea, **kwargs})


class EncryptedDateField(EncryptedField):
    """An encrypted date (a date of birth), encrypted as its ISO text."""

    description = "Date encrypted under its subject's key"
    empty_strings_allowed = False

    def plaintext_to_text(self, value) -> str:
        return value if isinstance(value, str) else value.isoformat()

    def text_to_plaintext(self, text: str) -> dt.date:
        return dt.date.fromisoformat(text)

    def to_python(self, value):
        if value is None or isinstance(value, Sealed):
            return value
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise ValidationError("Enter a valid date (YYYY-MM-DD).", code="invalid") from None

    def still_valid(self, instance, kept: _Kept, value) -> bool:
        return super().still_valid(instance, kept, self.to_python(value))

    def formfield(self, **kwargs):
        return super().formfield(**{"form_class": forms.DateField, **kwargs})


# blind indexes ---------------------------------------------------------------------------------------------------
def normalize_email(value: str) -> str:
    """E-mail addresses compare without surrounding blanks and case."""
    return value.strip().lower()


def blind_index(value: str, *, context: str) -> bytes:
    """The keyed HMAC-SHA256 of a normalised value in a context (one per model field): 32 bytes that find
    equal values without revealing them. Stable across KEK rotations. Under the `pii-index` key, not the card
    index's: personal data and card numbers never share a keyed function."""
    from vault import keys

    if not _CONTEXT.match(context):
        raise ValueError("a blind-index context is lowercase letters, digits, '_' and '.'")
    return keys.key_provider().prf("pii-index").compute(f"pii:{context}:{value}".encode(), 32)


class BlindIndexField(models.BinaryField):
    """The blind index of another field's plaintext, recomputed on save: `source` names that field, `context`
    (stable, e.g. "accounts.customer.email") keeps indexes of different fields apart, `normalize` is applied
    before hashing. Look up with `field.index_of(value)` (or `blind_index(normalize(value), context=...)`)."""

    description = "Blind index (keyed HMAC) of an encrypted field"

    def __init__(self, *args, source: str, context: str, normalize=str, **kwargs) -> None:
        if not _CONTEXT.match(context):
            raise ValueError("a blind-index context is lowercase letters, digits, '_' and '.'")
        self.source, self.context, self.normalize = source, context, normalize
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault("db_index", True)
        kwargs.setdefault("null", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.update(source=self.source, context=self.context)
        if self.normalize is not str:
            kwargs["normalize"] = self.normalize
        return name, path, args, kwargs

    def check(self, **kwargs):
        errors = super().check(**kwargs)
        try:
            source = self.model._meta.get_field(self.source)
        except Exception:  # noqa: BLE001 - reported as a check error
            source = None
        if not isinstance(source, EncryptedField):
            errors.append(checks.Error(f"source {self.source!r} is not an encrypted field", obj=self, id="vault.E003"))
        return errors

    def db_check(self, connection):
        if connection.vendor != "postgresql":
            return None
        return f"octet_length({connection.ops.quote_name(self.column)}) = 32"

    def index_of(self, value) -> bytes | None:
        """The index of a plaintext as this field computes it (None for None)."""
        if value is None:
            return None
        source = self.model._meta.get_field(self.source)
        return blind_index(self.normalize(source.plaintext_to_text(value)), context=self.context)

    def pre_save(self, model_instance, add):
        source = self.model._meta.get_field(self.source)
        value = model_instance.__dict__.get(source.attname, _NOT_LOADED)
        if value is _NOT_LOADED or isinstance(value, Sealed):
            # The source was not read (or not loaded) since it came from the database: its index stands.
            return getattr(model_instance, self.attname)
        index = self.index_of(value)
        setattr(model_instance, self.attname, index)
        return index

    def get_db_prep_value(self, value, connection, prepared=False):
        if isinstance(value, str):
            raise TypeError(f"compare {self.model._meta.label_lower}.{self.name} with index_of(value), not plaintext")
        return super().get_db_prep_value(value, connection, prepared)


# crypto-shredding ------------------------------------------------------------------------------------------------
def subject_blind_indexes_erase(*, subject_id: str) -> int:
    """Clear every blind index computed from a subject's PII, in every model: once their key is gone, their
    e-mail address must not find them either. Returns the number of rows changed."""
    from django.apps import apps

    changed = 0
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if not isinstance(field, BlindIndexField):
                continue
            subject_field = model._meta.get_field(field.source).subject_field
            try:
                rows = model._base_manager.filter(**{subject_field: subject_id, f"{field.attname}__isnull": False})
                changed += rows.update(**{field.attname: None})
            except ValidationError:
                continue  # not an id this model's subject field can hold: none of its rows is this subject
    return changed


def blind_indexes_recompute(*, batch_size: int = 500) -> int:
    """Recompute every blind index of personal data from its decrypted source under the current `pii-index`
    key, a batch of rows per transaction; returns the number of rows changed. Run once when that key is new on
    an installation whose indexes were computed with another key (`create_keys` does it); safe to run again."""
    from django.apps import apps
    from django.db import transaction

    changed = 0
    for model in apps.get_models():
        fields = [field for field in model._meta.concrete_fields if isinstance(field, BlindIndexField)]
        if not fields:
            continue
        last = None
        while True:
            with transaction.atomic():
                rows = model._base_manager.select_for_update().order_by("pk")
                if last is not None:
                    rows = rows.filter(pk__gt=last)
                batch = list(rows[:batch_size])
                for row in batch:
                    fresh = {
                        field.attname: field.index_of(getattr(row, field.source))
                        for field in fields
                        if getattr(row, field.attname) is not None
                    }
                    fresh = {name: index for name, index in fresh.items() if bytes(getattr(row, name)) != index}
                    if fresh:
                        model._base_manager.filter(pk=row.pk).update(**fresh)
                        changed += 1
            if len(batch) < batch_size:
                break
            last = batch[-1].pk
    return changed


def subject_forgotten_exists(subject_ref: str = "pk") -> models.Exists:
    """An expression for annotations: whether the subject in `subject_ref` (a field of the outer model) is
    forgotten (admin lists show it without reading any PII)."""
    from vault.models import SubjectKey

    return models.Exists(
        SubjectKey.objects.filter(
            subject_id=Cast(models.OuterRef(subject_ref), output_field=models.CharField()),
            forgotten_at__isnull=False,
        )
    )
