"""The vault's tables: the only place a card number exists, and only as AES-256-GCM ciphertext.

A card's number and cardholder name are encrypted under the card's own data key, which is stored wrapped by
the key-encryption key; the token is bound into both as associated data, so ciphertexts moved between rows
fail to decrypt. The blind index (a keyed HMAC of scope and number) finds an existing card without being a
plain hash of the number.
"""

from django.conf import settings
from django.db import models


class Card(models.Model):
    token = models.CharField(primary_key=True, max_length=64)
    merchant_id = models.CharField(max_length=64, db_index=True)
    blind_index = models.BinaryField(max_length=32)
    wrapped_key = models.BinaryField()
    kek_key_id = models.BigIntegerField(db_index=True)
    number_ciphertext = models.BinaryField()
    name_ciphertext = models.BinaryField(null=True)
    brand = models.CharField(max_length=20)
    last4 = models.CharField(max_length=4)
    masked = models.CharField(max_length=19)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [("detokenize", "Can see card numbers (the CDE role)")]
        constraints = [
            models.UniqueConstraint(fields=["merchant_id", "blind_index"], name="vault_card_scope_index_unique"),
            models.CheckConstraint(
                condition=models.Q(exp_month__gte=1, exp_month__lte=12), name="vault_card_exp_month"
            ),
            models.CheckConstraint(condition=models.Q(last4__regex=r"^[0-9]{4}$"), name="vault_card_last4_digits"),
        ]

    def __str__(self) -> str:
        return f"{self.token} {self.brand} {self.masked}"


class SubjectKey(models.Model):
    """One data key per data subject (a customer, a cardholder): all their PII is encrypted under it, so
    destroying it (crypto-shredding) makes that PII unreadable everywhere, immutable events included."""

    subject_id = models.CharField(primary_key=True, max_length=64)
    wrapped_key = models.BinaryField(null=True)
    kek_key_id = models.BigIntegerField(null=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    forgotten_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(wrapped_key__isnull=True, forgotten_at__isnull=False)
                | models.Q(wrapped_key__isnull=False, forgotten_at__isnull=True),
                name="vault_subject_key_present_or_forgotten",
            )
        ]

    def __str__(self) -> str:
        return f"subject {self.subject_id}{' (forgotten)' if self.forgotten_at else ''}"


class DetokenizationAudit(models.Model):
    """Every attempt to see a card number, granted or not. Append-only in the database."""

    GRANTED = "granted"
    DENIED = "denied"
    NOT_FOUND = "not_found"
    FAILED = "failed"
    OUTCOMES = [(GRANTED, GRANTED), (DENIED, DENIED), (NOT_FOUND, NOT_FOUND), (FAILED, FAILED)]

    occurred_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.DO_NOTHING, db_constraint=False)
    token = models.CharField(max_length=64, db_index=True)
    purpose = models.CharField(max_length=500)
    outcome = models.CharField(max_length=16, choices=OUTCOMES)
    channel = models.CharField(max_length=16)

    class Meta:
        ordering = ["-occurred_at"]
        # Append-only (a trigger, migration 0002): kept out of Django's flush, which truncates managed tables.
        managed = False

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.token} {self.outcome}"
