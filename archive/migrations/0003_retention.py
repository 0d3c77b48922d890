"""Retention as data: the policy table seeded from the seed's "Data lifecycle" table, its append-only history,
and the append-only purge records. The app role gets SELECT and INSERT only on the two histories
(fintech.db_roles.APPEND_ONLY); their triggers refuse UPDATE, DELETE and TRUNCATE to any role. The policy table's
trigger lets a row be written only in a transaction that recorded a retention change for its kind (this
migration's seed, or `manage.py retention_set`), and never deleted or truncated."""

from django.db import migrations, models

TABLE_SQL = """
CREATE TABLE archive_retention_change (
    id bigserial PRIMARY KEY,
    changed_at timestamptz NOT NULL DEFAULT now(),
    os_user varchar(150) NOT NULL,
    by_name varchar(150) NOT NULL DEFAULT '',
    kind varchar(32) NOT NULL,
    before jsonb NULL,
    after jsonb NOT NULL,
    reason text NOT NULL CHECK (btrim(reason) <> ''),
    transaction_id bigint NOT NULL DEFAULT txid_current()
);
CREATE INDEX archive_retention_change_kind ON archive_retention_change (kind, changed_at);
CREATE INDEX archive_retention_change_tx ON archive_retention_change (transaction_id, kind);

CREATE TABLE archive_retention_policy (
    kind varchar(32) PRIMARY KEY,
    hot_where varchar(200) NOT NULL,
    hot varchar(32) NOT NULL,
    warm_where varchar(200) NOT NULL DEFAULT '',
    warm_until varchar(32) NULL,
    cold_where varchar(200) NOT NULL DEFAULT '',
    cold_until varchar(32) NULL,
    keep varchar(32) NULL,
    applied_by varchar(200) NOT NULL DEFAULT '',
    description text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now(),
    CHECK (hot ~ '^P([0-9]+Y)?([0-9]+M)?([0-9]+D)?(T([0-9]+H)?([0-9]+M)?)?$'),
    CHECK (warm_until ~ '^P([0-9]+Y)?([0-9]+M)?([0-9]+D)?(T([0-9]+H)?([0-9]+M)?)?$'),
    CHECK (cold_until ~ '^P([0-9]+Y)?([0-9]+M)?([0-9]+D)?(T([0-9]+H)?([0-9]+M)?)?$'),
    CHECK (keep ~ '^P([0-9]+Y)?([0-9]+M)?([0-9]+D)?(T([0-9]+H)?([0-9]+M)?)?$')
);

CREATE TABLE archive_purge_record (
    id bigserial PRIMARY KEY,
    purged_at timestamptz NOT NULL DEFAULT now(),
    purged_by varchar(150) NOT NULL,
    archive_object_id bigint NOT NULL,
    kind varchar(32) NOT NULL,
    period_start date NOT NULL,
    period_end date NOT NULL,
    key varchar(300) NOT NULL,
    row_count bigint NOT NULL,
    sha256_plaintext varchar(64) NOT NULL,
    sha256_object varchar(64) NOT NULL,
    manifest jsonb NOT NULL,
    policy jsonb NOT NULL
);
CREATE INDEX archive_purge_record_kind ON archive_purge_record (kind, period_start);

CREATE FUNCTION archive_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % rejected', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER archive_retention_change_no_update_delete BEFORE UPDATE OR DELETE ON archive_retention_change
    FOR EACH ROW EXECUTE FUNCTION archive_append_only();
CREATE TRIGGER archive_retention_change_no_truncate BEFORE TRUNCATE ON archive_retention_change
    FOR EACH STATEMENT EXECUTE FUNCTION archive_append_only();
CREATE TRIGGER archive_purge_record_no_update_delete BEFORE UPDATE OR DELETE ON archive_purge_record
    FOR EACH ROW EXECUTE FUNCTION archive_append_only();
CREATE TRIGGER archive_purge_record_no_truncate BEFORE TRUNCATE ON archive_purge_record
    FOR EACH STATEMENT EXECUTE FUNCTION archive_append_only();

CREATE FUNCTION archive_retention_policy_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') AND EXISTS (
        SELECT 1 FROM archive_retention_change
        WHERE transaction_id = txid_current() AND kind = NEW.kind
    ) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'archive_retention_policy changes only with its change recorded (manage.py retention_set): % rejected', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER archive_retention_policy_guard BEFORE INSERT OR UPDATE OR DELETE ON archive_retention_policy
    FOR EACH ROW EXECUTE FUNCTION archive_retention_policy_guard();
CREATE TRIGGER archive_retention_policy_no_truncate BEFORE TRUNCATE ON archive_retention_policy
    FOR EACH STATEMENT EXECUTE FUNCTION archive_retention_policy_guard();
"""

DROP_SQL = """
DROP TABLE archive_retention_policy;
DROP TABLE archive_retention_change;
DROP TABLE archive_purge_record;
DROP FUNCTION archive_retention_policy_guard();
DROP FUNCTION archive_append_only();
"""

_EVENTS_JOB = "archive.tasks.lifecycle_apply_task (archive_events, move_archives, purge_archives)"
_NOT_APPLIED = " Informational: no job applies it yet."
_EVENTS_JOB_SHORT = "archive.tasks.lifecycle_apply_task"
# The seed's "Data lifecycle" table, and the short-lived operational rows beside it. Where each tier is, not for how
# long: the durations are the columns of their own (a change of them leaves these texts true).
SEED = [
    {
        "kind": "payment_events",
        "hot_where": "database: the event store's monthly partitions",
        "hot": "P3M",
        "warm_where": "archive store, warm/",
        "warm_until": "P1Y",
        "cold_where": "archive store, cold/ (deep archive)",
        "cold_until": "P10Y",
        "keep": "P10Y",
        "applied_by": _EVENTS_JOB,
        "description": "Payment events: whole months move from PostgreSQL to the archive store once older than the "
        "hot window (archive_events), from warm/ to cold/ past the warm window (move_archives), and are purged past "
        "the total, leaving a purge record (purge_archives).",
    },
    {
        "kind": "balance_snapshots",
        "hot_where": "Redis (the latest balance)",
        "hot": "P0D",
        "warm_where": "database",
        "warm_until": "P1Y",
        "cold_where": "object storage",
        "cold_until": None,
        "keep": None,
        "applied_by": "ledger.tasks.balance_snapshots_task (daily snapshots), " + _EVENTS_JOB_SHORT,
        "description": "Balance snapshots (one per account at the end of each day, snapshot_balances): the latest "
        "balance in Redis (the balance read model), the snapshots of the database window in PostgreSQL, whole years "
        "before it in the archive store (archive_snapshots), kept for ever.",
    },
    {
        "kind": "audit_logs",
        "hot_where": "log service",
        "hot": "P30D",
        "warm_where": "object storage",
        "warm_until": "P1Y",
        "cold_where": "archive",
        "cold_until": "P7Y",
        "keep": "P7Y",
        "applied_by": _EVENTS_JOB_SHORT,
        "description": "Audit logs (the staff audit trail, which records key rotations and archive commands run "
        "from the admin, and the detokenisation audit): whole months past the hot window move to the archive store "
        "(archive_audit_logs), to cold/ past the warm window, purged past the total with a purge record.",
    },
    {
        "kind": "kyc_documents",
        "hot_where": "object storage (under review)",
        "hot": "P0D",
        "warm_where": "infrequent-access tier (after review)",
        "warm_until": "P5Y",
        "cold_where": "archive",
        "cold_until": None,
        "keep": None,
        "applied_by": "",
        "description": "KYC documents: hot while under review and warm after it (by review state, not age: hot is "
        "P0D), then archived. No KYC documents exist in this system yet." + _NOT_APPLIED,
    },
    {
        "kind": "analytics",
        "hot_where": "database: merchant daily summaries",
        "hot": "P6M",
        "warm_where": "Parquet files",
        "warm_until": "P5Y",
        "cold_where": "",
        "cold_until": "P5Y",
        "keep": "P5Y",
        "applied_by": _EVENTS_JOB_SHORT,
        "description": "Analytics (the merchant daily summaries): in the database, then sealed Parquet in the "
        "archive store (archive_analytics) queried in place with query_archive; no cold tier.",
    },
    {
        "kind": "idempotency_records",
        "hot_where": "database (fintech_idempotency)",
        "hot": "PT24H",
        "warm_where": "",
        "warm_until": "PT24H",
        "cold_where": "",
        "cold_until": "PT24H",
        "keep": "PT24H",
        "applied_by": "fintech.tasks.idempotency_records_purge_task (IDEMPOTENCY_KEY_TTL_HOURS)",
        "description": "Idempotency records: kept for the retry window, then deleted; their responses may show a "
        "card's BIN, last 4 and expiry. The job deletes by IDEMPOTENCY_KEY_TTL_HOURS (24): keep the two equal.",
    },
    {
        "kind": "console_operations",
        "hot_where": "database (console_operation)",
        "hot": "P1Y",
        "warm_where": "",
        "warm_until": "P1Y",
        "cold_where": "",
        "cold_until": "P1Y",
        "keep": "P1Y",
        "applied_by": _EVENTS_JOB_SHORT,
        "description": "Console operations (replays, cache rebuilds, reconciliations asked from the console): kept "
        "as long as the staff login records they complement. Not in the seed's table.",
    },
    {
        "kind": "staff_login_records",
        "hot_where": "database (django-axes: axes_accessattempt, axes_accesslog, axes_accessfailurelog)",
        "hot": "P1Y",
        "warm_where": "",
        "warm_until": "P1Y",
        "cold_where": "",
        "cold_until": "P1Y",
        "keep": "P1Y",
        "applied_by": _EVENTS_JOB_SHORT,
        "description": "Staff login records and lockouts (django-axes): a year, as PCI DSS (10.5.1) asks of audit "
        "logs. Not in the seed's table.",
    },
    {
        "kind": "expired_sessions",
        "hot_where": "database (django_session, until the session expires)",
        "hot": "P0D",
        "warm_where": "",
        "warm_until": "P0D",
        "cold_where": "",
        "cold_until": "P0D",
        "keep": "P0D",
        "applied_by": _EVENTS_JOB_SHORT,
        "description": "Staff sessions: nothing is kept past a session's expiry (STAFF_SESSION_IDLE_MINUTES after "
        "its last request; counted from its expiry date); the lifecycle job deletes the expired ones. Not "
        "in the seed's table.",
    },
]


def seed(apps, schema_editor):
    RetentionChange = apps.get_model("archive", "RetentionChange")
    RetentionPolicy = apps.get_model("archive", "RetentionPolicy")
    from django.utils import timezone

    now = timezone.now()
    for row in SEED:
        RetentionChange.objects.create(
            changed_at=now,
            os_user="migration",
            by_name="archive.0003_retention",
            kind=row["kind"],
            before=None,
            after={**row, "changed_at": now.isoformat()},
            reason="seeded from the seed's Data lifecycle table",
        )
        RetentionPolicy.objects.create(changed_at=now, **row)


class Migration(migrations.Migration):
    dependencies = [("archive", "0002_more_kinds")]

    operations = [
        migrations.RunSQL(
            TABLE_SQL,
            DROP_SQL,
            state_operations=[
                migrations.CreateModel(
                    name="RetentionPolicy",
                    fields=[
                        ("kind", models.CharField(max_length=32, primary_key=True, serialize=False)),
                        ("hot_where", models.CharField(max_length=200)),
                        ("hot", models.CharField(help_text="ISO-8601: data younger than this is hot", max_length=32)),
                        ("warm_where", models.CharField(blank=True, max_length=200)),
                        (
                            "warm_until",
                            models.CharField(help_text="ISO-8601; empty: forever", max_length=32, null=True),
                        ),
                        ("cold_where", models.CharField(blank=True, max_length=200)),
                        (
                            "cold_until",
                            models.CharField(help_text="ISO-8601; empty: forever", max_length=32, null=True),
                        ),
                        (
                            "keep",
                            models.CharField(
                                help_text="ISO-8601: kept in all; empty: forever", max_length=32, null=True
                            ),
                        ),
                        (
                            "applied_by",
                            models.CharField(
                                blank=True, help_text="the job that applies it; empty: none yet", max_length=200
                            ),
                        ),
                        ("description", models.TextField()),
                        ("changed_at", models.DateTimeField()),
                    ],
                    options={
                        "verbose_name_plural": "retention policies",
                        "db_table": "archive_retention_policy",
                        "ordering": ["kind"],
                        "managed": False,
                    },
                ),
                migrations.CreateModel(
                    name="RetentionChange",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("changed_at", models.DateTimeField()),
                        ("os_user", models.CharField(max_length=150)),
                        ("by_name", models.CharField(blank=True, max_length=150)),
                        ("kind", models.CharField(max_length=32)),
                        ("before", models.JSONField(null=True)),
                        ("after", models.JSONField()),
                        ("reason", models.TextField()),
                    ],
                    options={
                        "db_table": "archive_retention_change",
                        "ordering": ["-changed_at", "-id"],
                        "managed": False,
                    },
                ),
                migrations.CreateModel(
                    name="PurgeRecord",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("purged_at", models.DateTimeField()),
                        ("purged_by", models.CharField(max_length=150)),
                        ("archive_object_id", models.BigIntegerField()),
                        ("kind", models.CharField(max_length=32)),
                        ("period_start", models.DateField()),
                        ("period_end", models.DateField(help_text="exclusive")),
                        ("key", models.CharField(max_length=300)),
                        ("row_count", models.BigIntegerField()),
                        ("sha256_plaintext", models.CharField(max_length=64)),
                        ("sha256_object", models.CharField(max_length=64)),
                        ("manifest", models.JSONField()),
                        ("policy", models.JSONField(help_text="the retention policy's row when it was purged")),
                    ],
                    options={"db_table": "archive_purge_record", "ordering": ["-purged_at", "-id"], "managed": False},
                ),
            ],
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
