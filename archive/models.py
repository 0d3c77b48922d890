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
