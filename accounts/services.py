import base64
import datetime as dt
import json
import re
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.authentication import API_TOKEN_PREFIX_LENGTH, api_token_hash, api_token_key_new
from accounts.domain import (
    AGGREGATE_TYPE,
    MERCHANT_ID_PATTERN,
    CustomerEmailTaken,
    CustomerRegistered,
    registered_pii_context,
)
from accounts.models import ApiToken, Customer, Merchant, MerchantUser
from accounts.principals import principals_forget
from fintech import eventstore, policy
from vault import services as vault_services


def merchant_get_or_create(*, merchant_id: str, name: str = "") -> Merchant:
    """The merchant with this id, created if it does not exist yet."""
    if not re.match(MERCHANT_ID_PATTERN, merchant_id):
        raise ValidationError(f"merchant id must match {MERCHANT_ID_PATTERN}")
    merchant, _ = Merchant.objects.get_or_create(id=merchant_id, defaults={"name": name or merchant_id})
    return merchant


@transaction.atomic
def api_token_issue(
    *, username: str, merchant_id: str | None = None, group: str | None = None, ttl_days: int | None = None
) -> str:
    """Create the user if needed, attach it to a merchant and/or a role, and issue it a new API token; returns
    the token's key, which is shown this once: only its hash is stored. It expires after `ttl_days` (default
    API_TOKEN_TTL_DAYS; never when that is None). Earlier tokens of the user stay valid until revoked."""
    if group is not None:
        try:
            policy.role_check(group)
        except ValueError as error:
            raise ValidationError(str(error)) from None
    user, _ = get_user_model().objects.get_or_create(username=username)
    if merchant_id:
        merchant = merchant_get_or_create(merchant_id=merchant_id)
        MerchantUser.objects.update_or_create(user=user, defaults={"merchant": merchant})
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    ttl_days = settings.API_TOKEN_TTL_DAYS if ttl_days is None else ttl_days
    key = api_token_key_new()
    ApiToken.objects.create(
        user=user,
        key_hash=api_token_hash(key),
        prefix=key[:API_TOKEN_PREFIX_LENGTH],
        expires_at=None if ttl_days is None else timezone.now() + dt.timedelta(days=ttl_days),
    )
    return key


def api_token_revoke(*, token_ids: list[int]) -> int:
    """Revoke these API tokens from now on (those already revoked keep their time); returns how many were
    revoked now."""
    with transaction.atomic():
        tokens = ApiToken.objects.filter(id__in=token_ids, revoked_at__isnull=True)
        principals_forget(tokens.values_list("key_hash", flat=True))
        return tokens.update(revoked_at=timezone.now())


def customer_register(
    *,
    name: str,
    email: str,
    phone: str | None = None,
    address: str | None = None,
    date_of_birth: dt.date | None = None,
    actor: str,
) -> Customer:
    """Register a customer: the row (PII encrypted under the customer's own key, the e-mail address also as a
    blind index) and its CustomerRegistered event (the PII as one ciphertext under that key), in one
    transaction. Raises ValidationError for a blank name or an invalid address, CustomerEmailTaken when
    another customer has that address."""
    name, email = (name or "").strip(), (email or "").strip()
    if not name:
        raise ValidationError("a customer needs a name", code="required")
    validate_email(email)
    customer = Customer(
        name=name, email=email, phone=phone, address=address, date_of_birth=date_of_birth, created_at=timezone.now()
    )
    with transaction.atomic():
        try:
            with transaction.atomic():
                customer.save(force_insert=True)
        except IntegrityError as error:
            if getattr(getattr(error.__cause__, "diag", None), "constraint_name", None) == (
                "accounts_customer_email_unique"
            ):
                raise CustomerEmailTaken("a customer with this e-mail address exists") from None
            raise
        event = CustomerRegistered(
            occurred_at=customer.created_at, customer_id=customer.id, pii=_registered_pii_seal(customer)
        )
        eventstore.append(customer.id, [event], 0, aggregate_type=AGGREGATE_TYPE, metadata={"actor": actor})
    return customer


def _registered_pii_seal(customer: Customer) -> str:
    pii = {
        "name": customer.name,
        "email": customer.email,
        "phone": customer.phone,
        "address": customer.address,
        "date_of_birth": customer.date_of_birth.isoformat() if customer.date_of_birth else None,
    }
    # The key exists already: saving the row created it.
    key = vault_services.subject_key(subject_id=str(customer.id))
    ciphertext = key.encrypt(json.dumps(pii, sort_keys=True).encode(), registered_pii_context(customer.id))
    return base64.b64encode(ciphertext).decode("ascii")


STAFF_ROLES = ("support", "finance", "cde", "auditor")


@dataclass(frozen=True)
class StaffCredentials:
    """What a new staff login needs, shown once: the password and the TOTP device's secret (base32) and URI."""

    username: str
    password: str
    totp_secret: str
    totp_uri: str


@transaction.atomic
def staff_user_ensure(*, username: str, role: str, superuser: bool = False) -> StaffCredentials:
    """Create or update a staff user in `role` (and a superuser if asked): a new random password and a new
    confirmed TOTP device replace whatever it had, so earlier passwords and authenticator entries stop working.
    The user keeps its other groups."""
    if role not in STAFF_ROLES:
        raise ValidationError(f"role must be one of {', '.join(STAFF_ROLES)}")
    vault_services.role_groups_ensure()
    user, _ = get_user_model().objects.get_or_create(username=username)
    password = secrets.token_urlsafe(18)
    user.set_password(password)
    user.is_staff = True
    user.is_active = True
    if superuser:
        user.is_superuser = True
    user.save()
    # Roles the policy does not know yet (auditor, until it does) are groups by name all the same.
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    TOTPDevice.objects.filter(user=user).delete()
    device = TOTPDevice.objects.create(user=user, name=f"{username} authenticator", confirmed=True)
    return StaffCredentials(
        username=username,
        password=password,
        totp_secret=base64.b32encode(bytes.fromhex(device.key)).decode(),
        totp_uri=device.config_url,
    )
