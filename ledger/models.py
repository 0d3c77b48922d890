"""The ledger's tables. They were created by the accounts app (its migrations 0003-0008 hold their rules in SQL)
and keep its table names: the models moved here (migration 0001) without a row being copied."""

import uuid

from django.db import models
from django.utils import timezone

from ledger.domain import BUCKETS, COMPANY, CUSTOMER, MERCHANT, OWNER_OF_KIND, AccountKind

# Amounts are signed integers in minor units of the account's currency. The rules the database keeps itself
# (accounts migration 0004): postings and journal entries cannot be updated or deleted; each entry's postings sum
# to zero per currency at commit; a posting's currency is its account's (composite foreign key); an account's
# available balance never falls below its floor and its pending balance never below zero. The ledger tables are
# unmanaged once created, which keeps them out of Django's flush (it truncates managed tables): a ledger is never
# emptied, tests included.

KIND_CHOICES = [(kind.value, kind.value.replace("_", " ")) for kind in AccountKind]
OWNER_CHOICES = [(owner, owner) for owner in (CUSTOMER, MERCHANT, COMPANY)]
BUCKET_CHOICES = [(bucket, bucket) for bucket in BUCKETS]


class Account(models.Model):
    """A ledger account with its balances, locked (SELECT ... FOR UPDATE, by id) by every entry touching it.
    `version` is the version of its event stream (AccountOpened, then one BalanceChanged per entry)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner_type = models.CharField(max_length=16, choices=OWNER_CHOICES)
    owner_id = models.CharField(max_length=64)
    currency = models.CharField(max_length=3)
    kind = models.CharField(max_length=24, choices=KIND_CHOICES)
    floor = models.BigIntegerField(null=True, blank=True, help_text="lowest available balance; empty: none")
    available = models.BigIntegerField(default=0)
    pending = models.BigIntegerField(default=0)
    version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "accounts_account"
        managed = False
        constraints = [
            models.UniqueConstraint(fields=["id", "currency"], name="accounts_account_id_currency"),
            # A merchant has one payable account per currency (payments are booked to it), the company one account
            # of each kind per currency; a customer may hold several.
            models.UniqueConstraint(
                fields=["owner_type", "owner_id", "kind", "currency"],
                condition=models.Q(owner_type__in=[COMPANY, MERCHANT]),
                name="accounts_account_one_per_owner_kind",
            ),
            models.CheckConstraint(
                condition=models.Q(floor__isnull=True) | models.Q(available__gte=models.F("floor")),
                name="accounts_account_above_floor",
            ),
            models.CheckConstraint(condition=models.Q(pending__gte=0), name="accounts_account_pending_not_negative"),
            models.CheckConstraint(condition=models.Q(currency__regex=r"^[A-Z]{3}$"), name="accounts_account_currency"),
            models.CheckConstraint(
                condition=models.Q(owner_type=CUSTOMER, kind=AccountKind.CUSTOMER_BALANCE)
                | models.Q(owner_type=MERCHANT, kind=AccountKind.MERCHANT_PAYABLE)
                | models.Q(owner_type=COMPANY, kind__in=[k for k, o in OWNER_OF_KIND.items() if o == COMPANY]),
                name="accounts_account_kind_of_owner",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.owner_type}:{self.owner_id} {self.currency}"


class JournalEntry(models.Model):
    """One movement of money: two or more postings summing to zero. `event_id` is the payment event a booking
    was made from (unique: a redelivered event posts nothing twice)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=24)
    reference = models.CharField(max_length=200, blank=True, default="")
    actor = models.CharField(max_length=200, blank=True, default="")
    event_id = models.UUIDField(null=True, blank=True, unique=True)
    payment_id = models.UUIDField(null=True, blank=True, db_index=True)
    settlement_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "accounts_journalentry"
        managed = False
        verbose_name_plural = "journal entries"

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


class Posting(models.Model):
    id = models.BigAutoField(primary_key=True)
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, related_name="postings")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="postings")
    currency = models.CharField(max_length=3)
    bucket = models.CharField(max_length=16, choices=BUCKET_CHOICES)
    amount = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "accounts_posting"
        managed = False
        indexes = [models.Index(fields=["account", "id"], name="accounts_posting_account")]
        constraints = [models.CheckConstraint(condition=~models.Q(amount=0), name="accounts_posting_not_zero")]

    def __str__(self) -> str:
        return f"{self.bucket} {self.amount:+d} {self.currency}"


class Transfer(models.Model):
    """A transfer between two accounts; its journal entry has the same id."""

    id = models.UUIDField(primary_key=True, editable=False)
    from_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    to_account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=16, default="completed")
    actor = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "accounts_transfer"
        managed = False
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="accounts_transfer_positive")]

    def __str__(self) -> str:
        return f"transfer {self.id}"


class Hold(models.Model):
    """Funds moved from available to pending until released (back) or settled (away)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="holds")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reference = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=16, default="held")
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "accounts_hold"
        managed = False
        constraints = [models.CheckConstraint(condition=models.Q(amount__gt=0), name="accounts_hold_positive")]

    def __str__(self) -> str:
        return f"hold {self.id} {self.status}"


class SettlementBatch(models.Model):
    """One settlement run: every merchant's captures settled by `settlement_date` moved to available."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    settlement_date = models.DateField(unique=True)
    actor = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "accounts_settlementbatch"
        managed = False
        verbose_name_plural = "settlement batches"

    def __str__(self) -> str:
        return f"settlement {self.settlement_date}"


class SettlementLine(models.Model):
    batch = models.ForeignKey(SettlementBatch, on_delete=models.PROTECT, related_name="lines")
    merchant_id = models.CharField(max_length=64)
    currency = models.CharField(max_length=3)
    payments = models.PositiveIntegerField()
    amount = models.BigIntegerField()
    entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, null=True, related_name="+")

    class Meta:
        db_table = "accounts_settlementline"
        managed = False
        constraints = [
            models.UniqueConstraint(fields=["batch", "merchant_id", "currency"], name="accounts_settlementline_key")
        ]

    def __str__(self) -> str:
        return f"{self.merchant_id} {self.currency} {self.amount}"


class SettledPayment(models.Model):
    """A payment whose pending merchant funds a batch has moved; later refunds of it debit available."""

    payment_id = models.UUIDField(primary_key=True)
    batch = models.ForeignKey(SettlementBatch, on_delete=models.PROTECT, related_name="+")
    amount = models.BigIntegerField()

    class Meta:
        db_table = "accounts_settledpayment"
        managed = False

    def __str__(self) -> str:
        return str(self.payment_id)


class BookingAlert(models.Model):
    """A payment event the ledger's bookings could not book as its rules say, whatever the retries: its amount
    went to suspense instead (`suspense_entry`, empty when even that was impossible) for an operator to resolve,
    and the bookings went on with the next event. Append-only, like the ledger (accounts migration 0008)."""

    id = models.BigAutoField(primary_key=True)
    event_id = models.UUIDField(unique=True, help_text="the payment event that could not be booked")
    event_type = models.CharField(max_length=64)
    payment_id = models.UUIDField(db_index=True)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.TextField()
    suspense_entry = models.ForeignKey(JournalEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        db_table = "accounts_bookingalert"
        managed = False

    def __str__(self) -> str:
        return f"{self.event_type} of payment {self.payment_id} not booked"


class ReconciliationRun(models.Model):
    """The verdict of one reconciliation (`reconcile`, the console's reconciliation page): when, by whom, whether
    the ledger and its read models agreed, and each difference found. Kept so that the last verdict can be shown
    and an auditor can see when the books were last proved."""

    id = models.BigAutoField(primary_key=True)
    ran_at = models.DateTimeField(db_index=True)
    actor = models.CharField(max_length=200)
    ok = models.BooleanField()
    # Per currency: entries, accounts, customer funds, trust, total and that currency's differences.
    currencies = models.JSONField(default=dict)
    # Differences tied to no currency (Redis unreadable, an entry without postings).
    differences = models.JSONField(default=list)
    difference_count = models.PositiveIntegerField()

    class Meta:
        db_table = "ledger_reconciliation"

    def __str__(self) -> str:
        return f"reconciliation {self.ran_at:%Y-%m-%d %H:%M} {'ok' if self.ok else 'differences'}"


class BalanceSnapshot(models.Model):
    """Each account's balances as they stood at the end of a day (UTC), kept forever: the database holds the
    last year, older years are archived (archive_snapshots); the latest balance itself is Redis's (the balance
    read model)."""

    id = models.BigAutoField(primary_key=True)
    account_id = models.UUIDField()
    day = models.DateField()
    currency = models.CharField(max_length=3)
    available = models.BigIntegerField()
    pending = models.BigIntegerField()
    taken_at = models.DateTimeField()

    class Meta:
        db_table = "ledger_balance_snapshot"
        constraints = [models.UniqueConstraint(fields=["account_id", "day"], name="ledger_balance_snapshot_key")]
        indexes = [models.Index(fields=["day"], name="ledger_balance_snapshot_day")]

    def __str__(self) -> str:
        return f"{self.account_id} at the end of {self.day}"


class SnapshotDay(models.Model):
    """A day whose balance snapshots were taken (with them, in one transaction): taken once, even a day on which
    no account existed."""

    day = models.DateField(primary_key=True)
    accounts = models.PositiveIntegerField()
    taken_at = models.DateTimeField()

    class Meta:
        db_table = "ledger_snapshot_day"

    def __str__(self) -> str:
        return f"snapshots of {self.day}"
