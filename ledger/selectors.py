"""The ledger's queries: an account's owner, postings and balances, from the ledger rows themselves."""

from fintech.balances import balance_fields
from fintech.timestamps import iso_z
from ledger.models import Account, Posting


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
            "created_at": iso_z(posting.created_at),
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
    return balance_fields(
        account_id=account.id,
        owner_type=account.owner_type,
        owner_id=account.owner_id,
        kind=account.kind,
        currency=account.currency,
        available=account.available,
        pending=account.pending,
        updated_at=account.updated_at,
        version=account.version,
    )
