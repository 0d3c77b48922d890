import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from accounts.domain import MERCHANT_ID_PATTERN
from vault.fields import BlindIndexField, EncryptedDateField, EncryptedTextField, normalize_email


class Merchant(models.Model):
    """A business that takes payments. Its id is the merchant id carried by payment events."""

    id = models.CharField(primary_key=True, max_length=64, validators=[RegexValidator(MERCHANT_ID_PATTERN)])
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id__regex=MERCHANT_ID_PATTERN), name="merchant_id_format")
        ]

    def __str__(self) -> str:
        return self.name or self.id


class MerchantUser(models.Model):
    """The user an API token belongs to acts for at most one merchant."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="merchant_link")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="users")

    def __str__(self) -> str:
        return f"{self.user} @ {self.merchant_id}"


class ApiToken(models.Model):
    """An API token of a user. Only the SHA-256 of its key is kept: the key is shown once, when it is issued, and
    whoever reads this table (or the admin) cannot act with it. The prefix, the key's first characters, names
    the token in lists and commands; it is far too short to authenticate with."""

    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=8, db_index=True, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="never, when empty")
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API token"
        constraints = [
            models.CheckConstraint(condition=models.Q(key_hash__regex=r"^[0-9a-f]{64}$"), name="apitoken_hash_format"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"


class Customer(models.Model):
    """A person who pays. The id is also their data-subject id in the vault: every personal field is encrypted
    under that subject's key, and forgetting the subject leaves only the id and the dates readable."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = EncryptedTextField(subject_field="id")
    email = EncryptedTextField(subject_field="id")
    phone = EncryptedTextField(subject_field="id", null=True, blank=True)
    address = EncryptedTextField(subject_field="id", null=True, blank=True)
    date_of_birth = EncryptedDateField(subject_field="id", null=True, blank=True)
    # Unique (the constraint below is its index): the e-mail address finds the customer, never its plaintext.
    email_index = BlindIndexField(
        source="email", context="accounts.customer.email", normalize=normalize_email, db_index=False
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False, db_index=True)

    class Meta:
        constraints = [
            # One customer per e-mail address; forgotten customers (index cleared) no longer hold theirs.
            models.UniqueConstraint(fields=["email_index"], name="accounts_customer_email_unique")
        ]

    def __str__(self) -> str:
        # Never PII: this string lands in admin pages, log entries and error messages.
        return f"customer {self.id}"
