import uuid

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

# The ledger's models, moved here from the accounts app, with their tables: their state is created here and deleted
# from accounts (accounts 0009), while the database is left as it is, rows, constraints, indexes and triggers
# included (created by accounts 0003-0008, which keep the SQL). The tables stay unmanaged.


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0008_booking_alert"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="JournalEntry",
                    fields=[
                        ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ("kind", models.CharField(max_length=24)),
                        ("reference", models.CharField(blank=True, default="", max_length=200)),
                        ("actor", models.CharField(blank=True, default="", max_length=200)),
                        ("event_id", models.UUIDField(blank=True, null=True, unique=True)),
                        ("payment_id", models.UUIDField(blank=True, db_index=True, null=True)),
                        ("settlement_date", models.DateField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                    ],
                    options={
                        "verbose_name_plural": "journal entries",
                        "db_table": "accounts_journalentry",
                        "managed": False,
                    },
                ),
                migrations.CreateModel(
                    name="SettlementBatch",
                    fields=[
                        ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ("settlement_date", models.DateField(unique=True)),
                        ("actor", models.CharField(blank=True, default="", max_length=200)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        "verbose_name_plural": "settlement batches",
                        "db_table": "accounts_settlementbatch",
                        "managed": False,
                    },
                ),
                migrations.CreateModel(
                    name="Account",
                    fields=[
                        ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        (
                            "owner_type",
                            models.CharField(
                                choices=[("customer", "customer"), ("merchant", "merchant"), ("company", "company")],
                                max_length=16,
                            ),
                        ),
                        ("owner_id", models.CharField(max_length=64)),
                        ("currency", models.CharField(max_length=3)),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("customer_balance", "customer balance"),
                                    ("merchant_payable", "merchant payable"),
                                    ("segregated_trust", "segregated trust"),
                                    ("revenue", "revenue"),
                                    ("clearing", "clearing"),
                                    ("suspense", "suspense"),
                                ],
                                max_length=24,
                            ),
                        ),
                        (
                            "floor",
                            models.BigIntegerField(
                                blank=True, help_text="lowest available balance; empty: none", null=True
                            ),
                        ),
                        ("available", models.BigIntegerField(default=0)),
                        ("pending", models.BigIntegerField(default=0)),
                        ("version", models.PositiveIntegerField(default=0)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
                    ],
                    options={
                        "db_table": "accounts_account",
                        "managed": False,
                        "constraints": [
                            models.UniqueConstraint(fields=("id", "currency"), name="accounts_account_id_currency"),
                            models.UniqueConstraint(
                                condition=models.Q(("owner_type__in", ["company", "merchant"])),
                                fields=("owner_type", "owner_id", "kind", "currency"),
                                name="accounts_account_one_per_owner_kind",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(
                                    ("floor__isnull", True), ("available__gte", models.F("floor")), _connector="OR"
                                ),
                                name="accounts_account_above_floor",
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("pending__gte", 0)), name="accounts_account_pending_not_negative"
                            ),
                            models.CheckConstraint(
                                condition=models.Q(("currency__regex", "^[A-Z]{3}$")), name="accounts_account_currency"
                            ),
                            models.CheckConstraint(
                                condition=models.Q(
                                    models.Q(("kind", "customer_balance"), ("owner_type", "customer")),
                                    models.Q(("kind", "merchant_payable"), ("owner_type", "merchant")),
                                    models.Q(
                                        ("kind__in", ["segregated_trust", "revenue", "clearing", "suspense"]),
                                        ("owner_type", "company"),
                                    ),
                                    _connector="OR",
                                ),
                                name="accounts_account_kind_of_owner",
                            ),
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="BookingAlert",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        (
                            "event_id",
                            models.UUIDField(help_text="the payment event that could not be booked", unique=True),
                        ),
                        ("event_type", models.CharField(max_length=64)),
                        ("payment_id", models.UUIDField(db_index=True)),
                        ("amount", models.BigIntegerField()),
                        ("currency", models.CharField(max_length=3)),
                        ("reason", models.TextField()),
                        ("created_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        (
                            "suspense_entry",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="ledger.journalentry",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "accounts_bookingalert",
                        "managed": False,
                    },
                ),
                migrations.CreateModel(
                    name="SettledPayment",
                    fields=[
                        ("payment_id", models.UUIDField(primary_key=True, serialize=False)),
                        ("amount", models.BigIntegerField()),
                        (
                            "batch",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="ledger.settlementbatch",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "accounts_settledpayment",
                        "managed": False,
                    },
                ),
                migrations.CreateModel(
                    name="Hold",
                    fields=[
                        ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ("amount", models.BigIntegerField()),
                        ("currency", models.CharField(max_length=3)),
                        ("reference", models.CharField(blank=True, default="", max_length=200)),
                        ("status", models.CharField(default="held", max_length=16)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("closed_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "account",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT, related_name="holds", to="ledger.account"
                            ),
                        ),
                    ],
                    options={
                        "db_table": "accounts_hold",
                        "managed": False,
                        "constraints": [
                            models.CheckConstraint(condition=models.Q(("amount__gt", 0)), name="accounts_hold_positive")
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="Posting",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("currency", models.CharField(max_length=3)),
                        (
                            "bucket",
                            models.CharField(
                                choices=[("available", "available"), ("pending", "pending")], max_length=16
                            ),
                        ),
                        ("amount", models.BigIntegerField()),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "account",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="postings",
                                to="ledger.account",
                            ),
                        ),
                        (
                            "entry",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="postings",
                                to="ledger.journalentry",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "accounts_posting",
                        "managed": False,
                        "indexes": [models.Index(fields=["account", "id"], name="accounts_posting_account")],
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("amount", 0), _negated=True), name="accounts_posting_not_zero"
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="SettlementLine",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("merchant_id", models.CharField(max_length=64)),
                        ("currency", models.CharField(max_length=3)),
                        ("payments", models.PositiveIntegerField()),
                        ("amount", models.BigIntegerField()),
                        (
                            "batch",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="lines",
                                to="ledger.settlementbatch",
                            ),
                        ),
                        (
                            "entry",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="ledger.journalentry",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "accounts_settlementline",
                        "managed": False,
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("batch", "merchant_id", "currency"), name="accounts_settlementline_key"
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="Transfer",
                    fields=[
                        ("id", models.UUIDField(editable=False, primary_key=True, serialize=False)),
                        ("amount", models.BigIntegerField()),
                        ("currency", models.CharField(max_length=3)),
                        ("reference", models.CharField(blank=True, default="", max_length=200)),
                        ("status", models.CharField(default="completed", max_length=16)),
                        ("actor", models.CharField(blank=True, default="", max_length=200)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "from_account",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT, related_name="+", to="ledger.account"
                            ),
                        ),
                        (
                            "to_account",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT, related_name="+", to="ledger.account"
                            ),
                        ),
                    ],
                    options={
                        "db_table": "accounts_transfer",
                        "managed": False,
                        "constraints": [
                            models.CheckConstraint(
                                condition=models.Q(("amount__gt", 0)), name="accounts_transfer_positive"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
