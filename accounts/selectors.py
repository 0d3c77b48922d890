import base64
import json

from django.db.models import Q

from accounts.domain import CustomerRegistered, registered_pii_context
from accounts.models import Account, ApiToken, Customer, Posting
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


def account_owner(*, account_id) -> tuple[str, str] | None:
    """(owner_type, owner_id) of a ledger account; None for an unknown one."""
    return Account.objects.filter(id=account_id).values_list("owner_type", "owner_id").first()


def account_posting_list(*, account_id, before: int | None, limit: int) -> tuple[list[dict], int | None]:
    """An account's postings, newest first, `limit` at a time before a posting id (the cursor); returns the page
    and the next cursor (None at the end)."""
    postings = Posting.objects.filter(account_id=account_id).select_related("entry").order_by("-id")
    if before is not None:
        postings = postings.filter(id__lt=before)
    page = list(postings[: limit + 1])
    results = [
        {
            "id": posting.id,
            "entry_id": str(posting.entry_id),
            "kind": posting.entry.kind,
            "reference": posting.entry.reference,
            "payment_id": str(posting.entry.payment_id) if posting.entry.payment_id else None,
            "bucket": posting.bucket,
            "amount": {"amount": posting.amount, "currency": posting.currency},
            "created_at": posting.created_at.isoformat().replace("+00:00", "Z"),
        }
        for posting in page[:limit]
    ]
    return results, (page[limit - 1].id if len(page) > limit else None)


def account_balance(*, account_id) -> dict | None:
    """An account's balances from its ledger row, the strongly consistent figure, as the balance read model's
    flat fields; None for an unknown account."""
    account = Account.objects.filter(id=account_id).first()
    if account is None:
        return None
    return {
        "account_id": str(account.id),
        "owner_type": account.owner_type,
        "owner_id": account.owner_id,
        "kind": account.kind,
        "currency": account.currency,
        "available": account.available,
        "pending": account.pending,
        "updated_at": account.updated_at.isoformat().replace("+00:00", "Z"),
        "version": account.version,
    }


def api_token_list(*, prefix_or_username: str) -> list[ApiToken]:
    """The API tokens with this prefix, or of the user with this name (both, should a name look like a
    prefix), oldest first."""
    return list(
        ApiToken.objects.filter(Q(prefix=prefix_or_username) | Q(user__username=prefix_or_username))
        .select_related("user")
        .order_by("created_at", "id")
    )
