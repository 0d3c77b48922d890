"""The ledger's queries: an account's owner, postings and balances, from the ledger rows themselves; what the
staff console shows of the ledger (a payment's entries, the last settlement batch and reconciliation)."""

from django.db.models import Count, Sum

from fintech.balances import balance_fields
from fintech.timestamps import iso_z
from ledger.models import Account, JournalEntry, Posting, ReconciliationRun, SettlementBatch, SettlementLine


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


def payment_entry_list(*, payment_id) -> list[dict]:
    """The journal entries a payment produced (capture, refunds, suspense), oldest first, each with its postings
    and their accounts."""
    entries = JournalEntry.objects.filter(payment_id=payment_id).order_by("created_at", "id")
    postings = (
        Posting.objects.filter(entry__payment_id=payment_id)
        .select_related("account")
        .order_by("entry_id", "id")
        .values("entry_id", "bucket", "amount", "currency", "account_id", "account__kind", "account__owner_id")
    )
    by_entry: dict = {}
    for posting in postings:
        by_entry.setdefault(posting["entry_id"], []).append(
            {
                "account_id": posting["account_id"],
                "account_kind": posting["account__kind"],
                "owner_id": posting["account__owner_id"],
                "bucket": posting["bucket"],
                "amount": posting["amount"],
                "currency": posting["currency"],
            }
        )
    return [
        {
            "id": entry.id,
            "kind": entry.kind,
            "reference": entry.reference,
            "actor": entry.actor,
            "event_id": entry.event_id,
            "created_at": entry.created_at,
            "postings": by_entry.get(entry.id, []),
        }
        for entry in entries
    ]


def settlement_batch_last() -> dict | None:
    """The settlement batch run last: its date, who ran it, and per currency its lines, payments and amount."""
    batch = SettlementBatch.objects.order_by("-created_at").first()
    if batch is None:
        return None
    totals = (
        SettlementLine.objects.filter(batch=batch)
        .values("currency")
        .annotate(lines=Count("id"), payments=Sum("payments"), amount=Sum("amount"))
        .order_by("currency")
    )
    return {
        "id": batch.id,
        "settlement_date": batch.settlement_date,
        "actor": batch.actor,
        "created_at": batch.created_at,
        "currencies": list(totals),
    }


def reconciliation_list(*, limit: int = 1) -> list[dict]:
    """The latest reconciliation verdicts, newest first."""
    runs = ReconciliationRun.objects.order_by("-ran_at", "-id")[:limit]
    return [
        {
            "id": run.id,
            "ran_at": run.ran_at,
            "actor": run.actor,
            "ok": run.ok,
            "currencies": run.currencies,
            "differences": run.differences,
            "difference_count": run.difference_count,
        }
        for run in runs
    ]
