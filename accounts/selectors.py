import base64
import json

from django.db.models import Q

from accounts.domain import CustomerRegistered, registered_pii_context
from accounts.models import ApiToken, Customer
from vault import services as vault_services


def customer_email_index(email: str) -> bytes:
    """The blind index of an e-mail address as Customer.email_index stores it (blanks and case ignored)."""
    return Customer._meta.get_field("email_index").index_of(email)


def customer_get_by_email(*, email: str) -> Customer | None:
    """The customer with this e-mail address (exact, ignoring surrounding blanks and case), found through the
    blind index; None when there is none or they were forgotten."""
    return Customer.objects.filter(email_index=customer_email_index(email)).first()


def customer_registered_pii(*, event: CustomerRegistered) -> dict | None:
    """The personal data carried by a CustomerRegistered event; None once the customer is forgotten. A
    tampered or misplaced ciphertext raises tink.TinkError."""
    try:
        key = vault_services.subject_key(subject_id=str(event.customer_id))
    except vault_services.SubjectForgotten:
        return None
    plaintext = key.decrypt(base64.b64decode(event.pii), registered_pii_context(event.customer_id))
    return json.loads(plaintext)


def api_token_list(*, prefix_or_username: str) -> list[ApiToken]:
    """The API tokens with this prefix, or of the user with this name (both, should a name look like a
    prefix), oldest first."""
    return list(
        ApiToken.objects.filter(Q(prefix=prefix_or_username) | Q(user__username=prefix_or_username))
        .select_related("user")
        .order_by("created_at", "id")
    )
