"""Read models and the projection checkpoints. Only projection handlers write these tables."""

from django.db import models


class ProjectionState(models.Model):
    """Where a projection is in the global log, and why it stopped if it did."""

    name = models.CharField(primary_key=True, max_length=64)
    checkpoint_transaction = models.BigIntegerField(default=0)
    checkpoint_position = models.BigIntegerField(default=0)
    events_applied = models.BigIntegerField(default=0)
    last_event_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField(auto_now=True)
    error = models.TextField(blank=True, default="")
    error_event_id = models.UUIDField(null=True)
    error_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return self.name


class PaymentView(models.Model):
    """The seed's payment read model: one row per payment, amounts in minor units of `currency`."""

    payment_id = models.UUIDField(primary_key=True)
    merchant_id = models.CharField(max_length=64)
    currency = models.CharField(max_length=3)
    amount = models.BigIntegerField()
    authorized_amount = models.BigIntegerField(default=0)
    captured_amount = models.BigIntegerField(default=0)
    refunded_amount = models.BigIntegerField(default=0)
    status = models.CharField(max_length=24)
    description = models.CharField(max_length=500, blank=True, default="")
    token = models.CharField(max_length=64, blank=True, default="")
    brand = models.CharField(max_length=20, blank=True, default="")
    last4 = models.CharField(max_length=4, blank=True, default="")
    authorization_code = models.CharField(max_length=32, blank=True, default="")
    failure_code = models.CharField(max_length=16, blank=True, default="")
    created_at = models.DateTimeField()
    authorized_at = models.DateTimeField(null=True)
    captured_at = models.DateTimeField(null=True)
    refunded_at = models.DateTimeField(null=True)
    cancelled_at = models.DateTimeField(null=True)
    failed_at = models.DateTimeField(null=True)
    version = models.PositiveIntegerField()

    class Meta:
        db_table = "projections_payment"
        indexes = [
            models.Index(fields=["merchant_id", "created_at", "payment_id"], name="projections_payment_list"),
            # Each list filter, in the list's order: a page is an index range, whatever the merchant's size.
            models.Index(
                fields=["merchant_id", "status", "created_at", "payment_id"], name="projections_pay_status_list"
            ),
            models.Index(
                fields=["merchant_id", "currency", "created_at", "payment_id"], name="projections_pay_currency_list"
            ),
            # The staff console's payment search (console.forms.PaymentSearchForm).
            models.Index(fields=["last4", "created_at"], name="projections_payment_last4"),
            models.Index(
                fields=["authorization_code"],
                condition=~models.Q(authorization_code=""),
                name="projections_payment_auth_code",
            ),
            models.Index(fields=["amount", "currency"], name="projections_payment_amount"),
            # The dashboard's today and last 24 hours, across merchants.
            models.Index(fields=["created_at"], name="projections_payment_created"),
        ]

    def __str__(self) -> str:
        return f"{self.payment_id} {self.status}"


class MerchantDailySummary(models.Model):
    """Per merchant, day (UTC) and currency: captures and refunds, for the back office and settlement."""

    merchant_id = models.CharField(max_length=64)
    day = models.DateField()
    currency = models.CharField(max_length=3)
    captured_count = models.PositiveIntegerField(default=0)
    captured_amount = models.BigIntegerField(default=0)
    refunded_count = models.PositiveIntegerField(default=0)
    refunded_amount = models.BigIntegerField(default=0)

    class Meta:
        db_table = "projections_merchant_daily"
        constraints = [
            models.UniqueConstraint(fields=["merchant_id", "day", "currency"], name="projections_merchant_daily_key")
        ]

    def __str__(self) -> str:
        return f"{self.merchant_id} {self.day} {self.currency}"


class BalanceView(models.Model):
    """The seed's balance read model: an account's balances as of its latest BalanceChanged event. Eventually
    consistent; the strongly consistent figure is the ledger's account row."""

    account_id = models.UUIDField(primary_key=True)
    owner_type = models.CharField(max_length=16)
    owner_id = models.CharField(max_length=64)
    kind = models.CharField(max_length=24)
    currency = models.CharField(max_length=3)
    available = models.BigIntegerField(default=0)
    pending = models.BigIntegerField(default=0)
    version = models.PositiveIntegerField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "projections_balance"
        indexes = [models.Index(fields=["owner_type", "owner_id"], name="projections_balance_owner")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.available}/{self.pending} {self.currency}"


class CacheMiss(models.Model):
    """A cache entry a projection could not write because Redis did not answer: the read table moved on while
    Redis kept an older entry or none. The next run once Redis answers writes it (services.cache_repair) and
    drops the record, so that an outage is put right without an operator."""

    projection = models.CharField(max_length=64)
    entity_id = models.CharField(max_length=64)
    # Moved forward by every new miss of the entry: a repair drops only the records it has written.
    missed_at = models.DateTimeField()

    class Meta:
        db_table = "projections_cache_miss"
        constraints = [models.UniqueConstraint(fields=["projection", "entity_id"], name="projections_cache_miss_entry")]

    def __str__(self) -> str:
        return f"{self.projection} {self.entity_id}"
