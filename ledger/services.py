"""The ledger's commands: opening accounts, deposits, transfers, holds. Each one checks what it can before it
locks anything, then locks its accounts and posts one entry through journal.entry_post."""

import re
import uuid

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, IntegrityError, transaction
from django.utils import timezone

from accounts import services as accounts_services
from accounts.domain import MERCHANT_ID_PATTERN
from fintech.db import raw_cursor
from fintech.money import MAX_MINOR, Money, MoneyError, currency_exponent
from ledger import journal, lock_objects
from ledger.domain import (
    AVAILABLE,
    COMPANY,
    CUSTOMER,
    MERCHANT,
    OWNER_OF_KIND,
    PENDING,
    UNBOUNDED_KINDS,
    AccountExists,
    AccountKind,
    AccountState,
    CurrencyMismatch,
    FundsDeposited,
    FundsHeld,
    HoldClosed,
    HoldNotFound,
    HoldReleased,
    HoldSettled,
    InvalidLedgerRequest,
    Posting,
    TransferCompleted,
    check_amount,
    check_holds_funds,
    check_movement,
    segregation_postings,
)
from ledger.models import Account, Hold, Transfer

_DEFAULT_FLOOR = object()


def account_open(
    *, owner_type: str, owner_id: str, currency: str, kind: str, floor: int | None | object = _DEFAULT_FLOOR, actor: str
) -> Account:
    """Open an account of `kind` in `currency` for a customer, a merchant or the company (a merchant and the
    company hold one per kind and currency, a customer any number). The floor is 0 unless given; the company's
    trust, clearing and suspense accounts have none. Raises InvalidLedgerRequest for a kind that does not fit
    the owner, a malformed owner id or an unknown currency, AccountExists when a merchant or the company has
    such an account already."""
    try:
        kind = AccountKind(kind)
        currency_exponent(currency)
    except (ValueError, MoneyError) as error:
        raise InvalidLedgerRequest(str(error)) from None
    if OWNER_OF_KIND[kind] != owner_type:
        raise InvalidLedgerRequest(f"a {kind} account belongs to a {OWNER_OF_KIND[kind]}, not a {owner_type}")
    owner_id = str(owner_id or "").strip()
    _owner_check(owner_type, owner_id)
    if floor is _DEFAULT_FLOOR:
        floor = None if kind in UNBOUNDED_KINDS else 0
    if floor is not None and (isinstance(floor, bool) or not isinstance(floor, int) or abs(floor) > MAX_MINOR):
        raise InvalidLedgerRequest(
            f"floor must be an integer number of minor units within ±{MAX_MINOR}, or null for none"
        )
    with transaction.atomic():
        account_id = journal.account_insert(
            owner_type=owner_type, owner_id=owner_id, currency=currency, kind=kind, floor=floor, actor=actor
        )
    if account_id is None:
        raise AccountExists(f"{owner_type} {owner_id} already has a {kind} account in {currency}")
    return Account.objects.get(id=account_id)


def _owner_check(owner_type: str, owner_id: str) -> None:
    """Owners are named by id: a customer's (registered here or in another system), a merchant's (created on
    first use, as issue_api_token does), or the company's own (`company` for the accounts the ledger opens)."""
    if owner_type not in (CUSTOMER, MERCHANT, COMPANY):
        raise InvalidLedgerRequest(f"owner_type must be one of {CUSTOMER}, {MERCHANT}, {COMPANY}")
    if not re.match(MERCHANT_ID_PATTERN, owner_id):
        raise InvalidLedgerRequest(f"owner_id must match {MERCHANT_ID_PATTERN}")
    if owner_type == MERCHANT:
        accounts_services.merchant_get_or_create(merchant_id=owner_id)


def _amount_check(amount: Money, *currencies: str) -> None:
    check_amount(amount, *currencies, max_major=settings.LEDGER_MAX_AMOUNT)


def _segregation(
    peeked: dict[uuid.UUID, tuple[str, str]], source: uuid.UUID, destination: uuid.UUID
) -> tuple[bool, bool]:
    """(leaving, entering) customer funds: money crossing that boundary moves the trust account with it."""
    source_customer = peeked[source][0] == AccountKind.CUSTOMER_BALANCE
    destination_customer = peeked[destination][0] == AccountKind.CUSTOMER_BALANCE
    return source_customer and not destination_customer, destination_customer and not source_customer


def _lock_with_mirrors(
    peeked: dict[uuid.UUID, tuple[str, str]], crossing: bool, currency: str
) -> tuple[dict[uuid.UUID, AccountState], uuid.UUID | None, uuid.UUID | None]:
    trust = clearing = None
    ids = set(peeked)
    if crossing:
        trust = journal.company_account_id(kind=AccountKind.SEGREGATED_TRUST, currency=currency)
        clearing = journal.company_account_id(kind=AccountKind.CLEARING, currency=currency)
        ids |= {trust, clearing}
    return lock_objects.accounts_lock(ids), trust, clearing


def account_deposit(*, account_id: uuid.UUID, amount: Money, reference: str = "", actor: str) -> journal.Entry:
    """Book money arriving from outside: against the segregated trust account for customer funds, against
    clearing for the rest. MovementNotAllowed into a trust, clearing or suspense account; AmountTooLarge above
    LEDGER_MAX_AMOUNT."""
    peeked = lock_objects.accounts_peek([account_id])
    kind, currency = peeked[account_id]
    check_holds_funds(kind, "deposits")
    _amount_check(amount, currency)
    counter_kind = AccountKind.SEGREGATED_TRUST if kind == AccountKind.CUSTOMER_BALANCE else AccountKind.CLEARING
    counter = journal.company_account_id(kind=counter_kind, currency=currency)
    entry_id = uuid.uuid4()
    with transaction.atomic():
        accounts = lock_objects.accounts_lock([account_id, counter])
        event = FundsDeposited(
            occurred_at=timezone.now(), entry_id=entry_id, account_id=account_id, amount=amount, reference=reference
        )
        return journal.entry_post(
            accounts=accounts,
            postings=journal.move(counter, amount.minor, into=account_id),
            kind="deposit",
            entry_event=event,
            entry_stream=entry_id,
            entry_id=entry_id,
            reference=reference,
            actor=actor,
        )


def transfer_create(
    *,
    from_account: uuid.UUID,
    to_account: uuid.UUID,
    amount: Money,
    reference: str = "",
    actor: str,
    transfer_id: uuid.UUID | None = None,
) -> Transfer:
    """Move `amount` from one account's available balance to another's, atomically. Raises InsufficientFunds
    (nothing written) when the source would fall below its floor, CurrencyMismatch when an account is in
    another currency, InvalidLedgerRequest for a non-positive amount or one account twice, MovementNotAllowed
    between kinds the ledger rules keep apart (domain.MOVEMENTS), AmountTooLarge above LEDGER_MAX_AMOUNT.
    A caller-chosen `transfer_id` makes a resubmission return the first transfer instead of moving money
    twice (InvalidLedgerRequest when that id names another transfer)."""
    if transfer_id is not None:
        existing = Transfer.objects.filter(id=transfer_id).first()
        if existing is not None:
            return _transfer_same(existing, from_account, to_account, amount)
    try:
        return _transfer(from_account, to_account, amount, reference, actor, transfer_id or uuid.uuid4())
    except IntegrityError:
        existing = Transfer.objects.filter(id=transfer_id).first() if transfer_id else None
        if existing is None:
            raise
        return _transfer_same(existing, from_account, to_account, amount)


def _transfer_same(existing: Transfer, from_account, to_account, amount: Money) -> Transfer:
    if (existing.from_account_id, existing.to_account_id, existing.amount, existing.currency) != (
        from_account,
        to_account,
        amount.minor,
        amount.currency,
    ):
        raise InvalidLedgerRequest(f"transfer {existing.id} exists with other accounts or amount")
    return existing


def _transfer(
    from_account: uuid.UUID, to_account: uuid.UUID, amount: Money, reference: str, actor: str, transfer_id: uuid.UUID
) -> Transfer:
    if from_account == to_account:
        raise InvalidLedgerRequest("a transfer needs two different accounts")
    peeked = lock_objects.accounts_peek([from_account, to_account])
    check_movement(peeked[from_account][0], peeked[to_account][0])
    _amount_check(amount, peeked[from_account][1], peeked[to_account][1])
    leaving, entering = _segregation(peeked, from_account, to_account)
    with transaction.atomic():
        accounts, trust, clearing = _lock_with_mirrors(peeked, leaving or entering, amount.currency)
        postings = journal.move(from_account, amount.minor, into=to_account)
        if leaving or entering:
            postings += segregation_postings(amount=amount.minor, leaving=leaving, trust_id=trust, clearing_id=clearing)
        event = TransferCompleted(
            occurred_at=timezone.now(),
            transfer_id=transfer_id,
            from_account=from_account,
            to_account=to_account,
            amount=amount,
            reference=reference,
        )
        entry = journal.entry_post(
            accounts=accounts,
            postings=postings,
            kind="transfer",
            entry_event=event,
            entry_stream=transfer_id,
            entry_id=transfer_id,
            reference=reference,
            actor=actor,
        )
        row = (transfer_id, from_account, to_account, amount.minor, amount.currency, reference, "completed", actor)
        return _transfer_insert((*row, entry.created_at))


def _transfer_insert(values: tuple) -> Transfer:
    """Insert a transfer row (its columns in the model's field order) with the statement Model.save sends,
    without the ORM's save machinery (a tenth of a transfer's client time), and return it as a saved
    instance."""
    with raw_cursor() as cursor:
        cursor.execute(
            'INSERT INTO "accounts_transfer" ("id", "from_account_id", "to_account_id", "amount", "currency", '
            '"reference", "status", "actor", "created_at") VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)',
            values,
        )
    return Transfer.from_db(DEFAULT_DB_ALIAS, None, values)


def hold_place(*, account_id: uuid.UUID, amount: Money, reference: str = "", actor: str) -> Hold:
    """Set funds aside, available → pending (a card authorization). InsufficientFunds below the floor,
    MovementNotAllowed on a trust, clearing or suspense account (no floor: a hold there would take nothing from
    anybody), AmountTooLarge above LEDGER_MAX_AMOUNT."""
    peeked = lock_objects.accounts_peek([account_id])
    check_holds_funds(peeked[account_id][0], "holds")
    _amount_check(amount, peeked[account_id][1])
    hold = Hold(
        id=uuid.uuid4(),
        account_id=account_id,
        amount=amount.minor,
        currency=amount.currency,
        reference=reference,
        status="held",
        created_at=timezone.now(),
    )
    with transaction.atomic():
        accounts = lock_objects.accounts_lock([account_id])
        event = FundsHeld(
            occurred_at=hold.created_at, hold_id=hold.id, account_id=account_id, amount=amount, reference=reference
        )
        journal.entry_post(
            accounts=accounts,
            postings=[Posting(account_id, AVAILABLE, -amount.minor), Posting(account_id, PENDING, amount.minor)],
            kind="hold",
            entry_event=event,
            entry_stream=hold.id,
            entry_id=uuid.uuid4(),
            reference=reference,
            actor=actor,
        )
        hold.save(force_insert=True)
    return hold


def _hold_locked(hold_id: uuid.UUID) -> Hold:
    hold = Hold.objects.select_for_update().filter(id=hold_id).first()
    if hold is None:
        raise HoldNotFound(f"no hold {hold_id}")
    if hold.status != "held":
        raise HoldClosed(f"hold {hold_id} is {hold.status}")
    return hold


def hold_release(*, hold_id: uuid.UUID, actor: str) -> Hold:
    """Give held funds back: pending → available on the same account."""
    with transaction.atomic():
        hold = _hold_locked(hold_id)
        accounts = lock_objects.accounts_lock([hold.account_id])
        amount = Money(hold.amount, hold.currency)
        event = HoldReleased(occurred_at=timezone.now(), hold_id=hold.id, account_id=hold.account_id, amount=amount)
        postings = [Posting(hold.account_id, PENDING, -hold.amount), Posting(hold.account_id, AVAILABLE, hold.amount)]
        return _hold_close(hold, accounts, postings, event, "released", actor)


def hold_settle(*, hold_id: uuid.UUID, to_account: uuid.UUID, actor: str) -> Hold:
    """Pay held funds out: pending of the held account → available of `to_account` (the capture of a card
    authorization). MovementNotAllowed between kinds the ledger rules keep apart, as for a transfer."""
    hold = Hold.objects.filter(id=hold_id).first()
    if hold is None:
        raise HoldNotFound(f"no hold {hold_id}")
    if hold.account_id == to_account:
        raise InvalidLedgerRequest("settle a hold into another account, or release it")
    peeked = lock_objects.accounts_peek([hold.account_id, to_account])
    check_movement(peeked[hold.account_id][0], peeked[to_account][0])
    # No limit here: the hold was placed within it, and a limit lowered since must not strand held funds.
    if peeked[to_account][1] != hold.currency:
        raise CurrencyMismatch(f"the hold is in {hold.currency}, the account in {peeked[to_account][1]}")
    leaving, entering = _segregation(peeked, hold.account_id, to_account)
    with transaction.atomic():
        hold = _hold_locked(hold_id)
        accounts, trust, clearing = _lock_with_mirrors(peeked, leaving or entering, hold.currency)
        postings = journal.move(hold.account_id, hold.amount, into=to_account, bucket=PENDING)
        if leaving or entering:
            postings += segregation_postings(amount=hold.amount, leaving=leaving, trust_id=trust, clearing_id=clearing)
        event = HoldSettled(
            occurred_at=timezone.now(),
            hold_id=hold.id,
            account_id=hold.account_id,
            to_account=to_account,
            amount=Money(hold.amount, hold.currency),
        )
        return _hold_close(hold, accounts, postings, event, "settled", actor)


def _hold_close(hold: Hold, accounts, postings: list[Posting], event, status: str, actor: str) -> Hold:
    journal.entry_post(
        accounts=accounts,
        postings=postings,
        kind={"released": "hold_release", "settled": "hold_settle"}[status],
        entry_event=event,
        entry_stream=hold.id,
        entry_stream_version=1,
        entry_id=uuid.uuid4(),
        reference=hold.reference,
        actor=actor,
    )
    hold.status, hold.closed_at = status, event.occurred_at
    hold.save(update_fields=["status", "closed_at"])
    return hold
