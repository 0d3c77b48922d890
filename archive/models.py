from django.db import models


class ArchiveObject(models.Model):
    """One archive object and its manifest: what data, which period, where, how many rows, which positions, the
    hashes of its plaintext and of the stored object, the wrapped key that opens it, when and by whom it was
    written, and how far its life has gone (written → archived → restored or purged)."""

    EVENTS = "events"
    ANALYTICS = "analytics"
    STAFF_AUDIT = "staff_audit"
    DETOKENIZATION_AUDIT = "detokenization_audit"
    BALANCE_SNAPSHOTS = "balance_snapshots"
    KINDS = [
        (EVENTS, "payment events (the event store)"),
        (ANALYTICS, "merchant daily summaries"),
        (STAFF_AUDIT, "staff audit trail"),
        (DETOKENIZATION_AUDIT, "detokenisation audit"),
        (BALANCE_SNAPSHOTS, "balance snapshots (a year each)"),
    ]
    WRITTEN, ARCHIVED, RESTORED, PURGED = "written", "archived", "restored", "purged"
    STATES = [(s, s) for s in (WRITTEN, ARCHIVED, RESTORED, PURGED)]
    WARM, COLD = "warm", "cold"
    TIERS = [(WARM, WARM), (COLD, COLD)]

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=32, choices=KINDS)
    period_start = models.DateField()
    period_end = models.DateField(help_text="exclusive")
    tier = models.CharField(max_length=8, choices=TIERS, default=WARM)
    key = models.CharField(max_length=300, help_text="the object's key in the archive store")
    state = models.CharField(max_length=16, choices=STATES, default=WRITTEN)
    schema_version = models.PositiveSmallIntegerField()
    row_count = models.BigIntegerField()
    first_transaction = models.BigIntegerField(null=True)
    first_position = models.BigIntegerField(null=True)
    last_transaction = models.BigIntegerField(null=True)
    last_position = models.BigIntegerField(null=True)
    sha256_plaintext = models.CharField(max_length=64)
    sha256_object = models.CharField(max_length=64)
    kek_key_id = models.BigIntegerField()
    wrapped_key = models.BinaryField()
    written_at = models.DateTimeField()
    written_by = models.CharField(max_length=150)
    archived_at = models.DateTimeField(null=True)
    restored_at = models.DateTimeField(null=True)
    purged_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "archive_object"
        constraints = [
            # One live object per kind and period: a month archived, restored and archived again gets a new one.
            models.UniqueConstraint(
                fields=["kind", "period_start"],
                condition=models.Q(state__in=["written", "archived"]),
                name="archive_object_one_live",
            )
        ]
        indexes = [models.Index(fields=["kind", "state", "period_start"], name="archive_object_kind_state")]

    def __str__(self) -> str:
        return f"{self.kind} {self.period_start:%Y-%m} ({self.state}, {self.tier})"

    @property
    def context(self) -> str:
        """The associated data its ciphertext is bound to."""
        return f"archive:{self.kind}:{self.period_start.isoformat()}:{self.schema_version}"

    def manifest(self) -> dict:
        return {
            "kind": self.kind,
            "period": [self.period_start.isoformat(), self.period_end.isoformat()],
            "key": self.key,
            "tier": self.tier,
            "schema_version": self.schema_version,
            "row_count": self.row_count,
            "first": [self.first_transaction, self.first_position],
            "last": [self.last_transaction, self.last_position],
            "sha256_plaintext": self.sha256_plaintext,
            "sha256_object": self.sha256_object,
            "kek_key_id": self.kek_key_id,
            "wrapped_key": bytes(self.wrapped_key).hex(),
            "written_at": self.written_at.isoformat(),
            "written_by": self.written_by,
        }


class RetentionPolicy(models.Model):
    """How long one kind of data stays in each tier, and in all: ISO-8601 durations counted back from now
    (archive.retention), NULL for forever. Seeded by migration 0002 from the seed's lifecycle table; changed only
    by a migration or `manage.py retention_set`, which records a RetentionChange in the same transaction (a
    trigger refuses any other write)."""

    PAYMENT_EVENTS = "payment_events"

    kind = models.CharField(max_length=32, primary_key=True)
    hot_where = models.CharField(max_length=200)
    hot = models.CharField(max_length=32, help_text="ISO-8601: data younger than this is hot")
    warm_where = models.CharField(max_length=200, blank=True)
    warm_until = models.CharField(max_length=32, null=True, help_text="ISO-8601; empty: forever")  # noqa: DJ001 - NULL: forever
    cold_where = models.CharField(max_length=200, blank=True)
    cold_until = models.CharField(max_length=32, null=True, help_text="ISO-8601; empty: forever")  # noqa: DJ001 - NULL: forever
    keep = models.CharField(max_length=32, null=True, help_text="ISO-8601: kept in all; empty: forever")  # noqa: DJ001 - NULL: forever
    applied_by = models.CharField(max_length=200, blank=True, help_text="the job that applies it; empty: none yet")
    description = models.TextField()
    changed_at = models.DateTimeField()

    class Meta:
        db_table = "archive_retention_policy"
        verbose_name_plural = "retention policies"
        ordering = ["kind"]
        # Changed only with a RetentionChange (trigger); kept out of Django's flush, which truncates managed tables.
        managed = False

    def __str__(self) -> str:
        return f"{self.kind}: hot {self.hot}, kept {self.keep or 'forever'}"


class RetentionChange(models.Model):
    """One change of a retention policy: when, who (the OS user, and the name given with --by), which kind,
    the policy before and after, and why. Append-only (a trigger refuses UPDATE, DELETE and TRUNCATE)."""

    id = models.BigAutoField(primary_key=True)
    changed_at = models.DateTimeField()
    os_user = models.CharField(max_length=150)
    by_name = models.CharField(max_length=150, blank=True)
    kind = models.CharField(max_length=32)
    before = models.JSONField(null=True)
    after = models.JSONField()
    reason = models.TextField()

    class Meta:
        db_table = "archive_retention_change"
        ordering = ["-changed_at", "-id"]
        managed = False

    def __str__(self) -> str:
        who = f"{self.os_user} ({self.by_name})" if self.by_name else self.os_user
        return f"{self.changed_at:%Y-%m-%d %H:%M:%S} {self.kind} by {who}"


class PurgeRecord(models.Model):
    """An archive object deleted past its retention: what (kind, period, key, rows, the manifest and its
    hashes), when, under which policy (a snapshot of its row), by whom. Kept forever; append-only (trigger)."""

    id = models.BigAutoField(primary_key=True)
    purged_at = models.DateTimeField()
    purged_by = models.CharField(max_length=150)
    archive_object_id = models.BigIntegerField()
    kind = models.CharField(max_length=32)
    period_start = models.DateField()
    period_end = models.DateField(help_text="exclusive")
    key = models.CharField(max_length=300)
    row_count = models.BigIntegerField()
    sha256_plaintext = models.CharField(max_length=64)
    sha256_object = models.CharField(max_length=64)
    manifest = models.JSONField()
    policy = models.JSONField(help_text="the retention policy's row when it was purged")

    class Meta:
        db_table = "archive_purge_record"
        ordering = ["-purged_at", "-id"]
        managed = False

    def __str__(self) -> str:
        return f"{self.kind} {self.period_start:%Y-%m} purged {self.purged_at:%Y-%m-%d}"
