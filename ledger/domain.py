"""The ledger's events, errors and rules. Pure Python, no Django."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass

from fintech.events import DomainEvent
from fintech.money import MAX_MINOR, Money, minor_limit

# Postings are signed integers in minor units: the balance of an account is the sum of its postings, every
# journal entry sums to zero per currency, and so does the sum of all balances of a currency. Customer funds
# and merchant payables stand positive; the accounts that mirror them on the company's side (the segregated
# trust account at the bank, clearing) stand negative by the same amount.

LEDGER_AGGREGATE = "ledger_account"
ENTRY_AGGREGATE = "ledger_entry"
HOLD_AGGREGATE = "ledger_hold"

AVAILABLE, PENDING = "available", "pending"
BUCKETS = (AVAILABLE, PENDING)

CUSTOMER, MERCHANT, COMPANY = "customer", "merchant", "company"
COMPANY_OWNER_ID = "company"


class AccountKind(enum.StrEnum):
    CUSTOMER_BALANCE = "customer_balance"
    MERCHANT_PAYABLE = "merchant_payable"
    SEGREGATED_TRUST = "segregated_trust"
    REVENUE = "revenue"
    CLEARING = "clearing"
    SUSPENSE = "suspense"


OWNER_OF_KIND = {
    AccountKind.CUSTOMER_BALANCE: CUSTOMER,
    AccountKind.MERCHANT_PAYABLE: MERCHANT,
    AccountKind.SEGREGATED_TRUST: COMPANY,
    AccountKind.REVENUE: COMPANY,
    AccountKind.CLEARING: COMPANY,
    AccountKind.SUSPENSE: COMPANY,
}
# The company's mirror accounts stand negative by design; every other kind has a floor of 0 unless configured.
UNBOUNDED_KINDS = frozenset({AccountKind.SEGREGATED_TRUST, AccountKind.CLEARING, AccountKind.SUSPENSE})

# Where a command (a deposit, a transfer, a hold and its settlement) may move money. The trust, clearing and
# suspense accounts have no floor and mirror money held elsewhere (customer funds, what the card network and the
# banks owe, what nobody could be charged for): they move only with the ledger's own bookings (the mirror
# postings of money crossing the boundary of customer funds, payment captures and refunds), never by a command,
# or a hold on the trust account settled to a merchant would pay out customer money that no customer gave.
# Between the three kinds that hold somebody's money every direction is allowed: customer funds crossing the
# boundary are mirrored by the trust account (segregation_postings).
MOVABLE_KINDS = frozenset({AccountKind.CUSTOMER_BALANCE, AccountKind.MERCHANT_PAYABLE, AccountKind.REVENUE})
# (from kind, to kind) of the transfers and hold settlements allowed; the README's ledger section shows the table.
MOVEMENTS = frozenset((source, destination) for source in MOVABLE_KINDS for destination in MOVABLE_KINDS)


class LedgerError(Exception):
    code = "ledger_error"


class InsufficientFunds(LedgerError):
    code = "insufficient_funds"


class CurrencyMismatch(LedgerError):
    code = "currency_mismatch"


class AccountNotFound(LedgerError):
    code = "account_not_found"


class AccountExists(LedgerError):
    code = "account_exists"


class InvalidLedgerRequest(LedgerError):
    code = "invalid_request"


class HoldNotFound(LedgerError):
    code = "hold_not_found"


class HoldClosed(LedgerError):
    code = "hold_closed"


class MovementNotAllowed(LedgerError):
    """A command moving money into or out of an account kind the ledger rules keep out of its reach."""

    code = "movement_not_allowed"


class AmountTooLarge(LedgerError):
    code = "amount_too_large"


class BalanceOutOfRange(LedgerError):
    """A balance would leave the range money can hold (fintech.money.MAX_MINOR)."""

    code = "balance_out_of_range"


def check_movement(source_kind: str, destination_kind: str) -> None:
    """A transfer, or a hold settled into another account, from one kind to another: MovementNotAllowed unless
    MOVEMENTS has the pair."""
    if (source_kind, destination_kind) not in MOVEMENTS:
        raise MovementNotAllowed(
            f"money does not move from a {source_kind} account to a {destination_kind} account by a command; "
            f"trust, clearing and suspense accounts move only with the ledger's own bookings"
        )


def check_holds_funds(kind: str, action: str) -> None:
    """A deposit or a hold lands on an account holding somebody's money, never on a mirror account."""
    if kind not in MOVABLE_KINDS:
        raise MovementNotAllowed(f"{action} go to customer, merchant or revenue accounts, not to {kind}")


def check_amount(amount: Money, *currencies: str, max_major: int) -> None:
    """A command's amount: positive, in the accounts' currency, and at most `max_major` major units of it
    (scaled by the currency's exponent: 1,000 means 1,000 JPY, 1,000.00 USD, 1,000.000 KWD)."""
    if amount.minor <= 0:
        raise InvalidLedgerRequest("the amount must be positive")
    if any(currency != amount.currency for currency in currencies):
        raise CurrencyMismatch(
            f"the amount is in {amount.currency}, the accounts in {', '.join(sorted(set(currencies)))}"
        )
    check_amount_limit(amount, max_major=max_major)


def check_amount_limit(amount: Money, *, max_major: int) -> None:
    """AmountTooLarge above `max_major` major units of the amount's currency."""
    limit = minor_limit(amount.currency, max_major)
    if amount.minor > limit:
        raise AmountTooLarge(f"the amount is above the limit of {Money(limit, amount.currency)} per operation")


@dataclass(frozen=True)
class Posting:
    account_id: uuid.UUID
    bucket: str
    amount: int  # signed minor units of the account's currency; never 0


@dataclass(frozen=True)
class AccountState:
    """An account row as locked for an entry."""

    id: uuid.UUID
    kind: str
    currency: str
    floor: int | None
    available: int
    pending: int
    version: int

    @property
    def holds_customer_funds(self) -> bool:
        return self.kind == AccountKind.CUSTOMER_BALANCE


def entry_check_balanced(postings: list[Posting], currency_of: dict[uuid.UUID, str]) -> None:
    """Two or more non-zero postings summing to zero per currency (the database checks it again at commit)."""
    if len(postings) < 2 or any(p.amount == 0 or p.bucket not in BUCKETS for p in postings):
        raise InvalidLedgerRequest("an entry needs two or more non-zero postings")
    totals: dict[str, int] = {}
    for posting in postings:
        currency = currency_of[posting.account_id]
        totals[currency] = totals.get(currency, 0) + posting.amount
    if any(totals.values()):
        raise InvalidLedgerRequest(f"postings do not balance: {totals}")


def balances_after(
    accounts: dict[uuid.UUID, AccountState], postings: list[Posting]
) -> dict[uuid.UUID, tuple[int, int]]:
    """(available, pending) of each touched account after the postings; InsufficientFunds when one would fall
    below its floor (available) or below zero (pending)."""
    after = {account_id: (accounts[account_id].available, accounts[account_id].pending) for account_id in accounts}
    for posting in postings:
        available, pending = after[posting.account_id]
        if posting.bucket == AVAILABLE:
            available += posting.amount
        else:
            pending += posting.amount
        after[posting.account_id] = (available, pending)
    for account_id, (available, pending) in after.items():
        account = accounts[account_id]
        if (account.floor is not None and available < account.floor) or pending < 0:
            raise InsufficientFunds(f"account {account_id} would fall below its floor")
        if abs(available) > MAX_MINOR or pending > MAX_MINOR:
            # A balance event carries Money, which stops at MAX_MINOR: refuse before writing anything.
            raise BalanceOutOfRange(f"account {account_id} would hold more than money can")
    return {account_id: after[account_id] for account_id in {p.account_id for p in postings}}


def segregation_postings(*, amount: int, leaving: bool, trust_id: uuid.UUID, clearing_id: uuid.UUID) -> list[Posting]:
    """Money crossing the boundary of customer funds moves the segregated trust account with it (through
    clearing), so that customer funds always equal the trust account."""
    sign = 1 if leaving else -1
    return [Posting(trust_id, AVAILABLE, sign * amount), Posting(clearing_id, AVAILABLE, -sign * amount)]


def fee_of(amount: int, basis_points: int) -> int:
    """The fee on an amount in minor units, rounded half up; never more than the amount."""
    return min(amount, (amount * basis_points + 5000) // 10000)


def refund_fee_share(*, fee: int, captured: int, refunded_before: int, refund: int) -> int:
    """The part of the capture fee a refund gives back: cumulative and proportional, so that refunds adding
    up to the capture give back exactly the fee, whatever the rounding of each."""
    if captured <= 0:
        return 0
    return fee * (refunded_before + refund) // captured - fee * refunded_before // captured


@dataclass(frozen=True, kw_only=True)
class AccountOpened(DomainEvent):
    aggregate_type = LEDGER_AGGREGATE

    account_id: uuid.UUID
    owner_type: str
    owner_id: str
    currency: str
    kind: str
    floor: int | None = None


@dataclass(frozen=True, kw_only=True)
class BalanceChanged(DomainEvent):
    """An account's balances after a journal entry (the balance read model is built from these)."""

    aggregate_type = LEDGER_AGGREGATE

    account_id: uuid.UUID
    entry_id: uuid.UUID
    available: Money
    pending: Money


@dataclass(frozen=True, kw_only=True)
class FundsDeposited(DomainEvent):
    aggregate_type = ENTRY_AGGREGATE

    entry_id: uuid.UUID
    account_id: uuid.UUID
    amount: Money
    reference: str


@dataclass(frozen=True, kw_only=True)
class TransferCompleted(DomainEvent):
    aggregate_type = ENTRY_AGGREGATE

    transfer_id: uuid.UUID
    from_account: uuid.UUID
    to_account: uuid.UUID
    amount: Money
    reference: str


@dataclass(frozen=True, kw_only=True)
class FundsHeld(DomainEvent):
    aggregate_type = HOLD_AGGREGATE

    hold_id: uuid.UUID
    account_id: uuid.UUID
    amount: Money
    reference: str


@dataclass(frozen=True, kw_only=True)
class HoldReleased(DomainEvent):
    aggregate_type = HOLD_AGGREGATE

    hold_id: uuid.UUID
    account_id: uuid.UUID
    amount: Money


@dataclass(frozen=True, kw_only=True)
class HoldSettled(DomainEvent):
    aggregate_type = HOLD_AGGREGATE

    hold_id: uuid.UUID
    account_id: uuid.UUID
    to_account: uuid.UUID
    amount: Money


@dataclass(frozen=True, kw_only=True)
class PaymentCaptureBooked(DomainEvent):
    """A captured payment credited its merchant's pending balance, less the fee to revenue."""

    aggregate_type = ENTRY_AGGREGATE

    entry_id: uuid.UUID
    payment_id: uuid.UUID
    merchant_account: uuid.UUID
    amount: Money
    fee: Money


@dataclass(frozen=True, kw_only=True)
class PaymentRefundBooked(DomainEvent):
    aggregate_type = ENTRY_AGGREGATE

    entry_id: uuid.UUID
    payment_id: uuid.UUID
    merchant_account: uuid.UUID
    amount: Money
    fee_returned: Money
    shortfall: Money


@dataclass(frozen=True, kw_only=True)
class MerchantFundsSettled(DomainEvent):
    """A settlement batch moved a merchant's settled captures from pending to available."""

    aggregate_type = ENTRY_AGGREGATE

    entry_id: uuid.UUID
    batch_id: uuid.UUID
    settlement_date: dt.date
    merchant_account: uuid.UUID
    amount: Money
    payments: int


@dataclass(frozen=True, kw_only=True)
class PaymentBookingSuspended(DomainEvent):
    """A payment event the bookings could not book as the rules say: its amount moved between clearing and
    suspense instead (into suspense for a capture, out of it for a refund), for an operator to resolve."""

    aggregate_type = ENTRY_AGGREGATE

    entry_id: uuid.UUID
    payment_id: uuid.UUID
    event_id: uuid.UUID
    amount: Money
    reason: str


def suspense_postings(*, amount: int, inflow: bool, clearing_id: uuid.UUID, suspense_id: uuid.UUID) -> list[Posting]:
    """A payment's money the card network moved (`inflow`: a capture, else a refund) that no merchant could be
    booked for: clearing against suspense, so that the ledger still balances and the amount stays visible."""
    sign = 1 if inflow else -1
    return [Posting(clearing_id, AVAILABLE, -sign * amount), Posting(suspense_id, AVAILABLE, sign * amount)]
