"""Tables of the shared kernel: the event store and the idempotency keys.

The event table is partitioned by month and created by raw SQL in the migrations (Django cannot declare
partitioning); the models here map it read-only for the admin and selectors. Writes go through
`fintech.eventstore`, never through the ORM.
"""

from django.conf import settings
from django.db import models


class Stream(models.Model):
    """One row per aggregate: its version is what serialises writers of the stream."""

    stream_id = models.UUIDField(primary_key=True)
    aggregate_type = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "fintech_stream"
        managed = False

    def __str__(self) -> str:
        return f"{self.aggregate_type} {self.stream_id} v{self.version}"


class Event(models.Model):
    event_id = models.UUIDField(primary_key=True)
    position = models.BigIntegerField(editable=False)
    aggregate_id = models.UUIDField()
    aggregate_type = models.CharField(max_length=64)
    event_type = models.CharField(max_length=128)
    event_version = models.PositiveSmallIntegerField()
    event_data = models.JSONField()
    metadata = models.JSONField()
    version = models.PositiveIntegerField()
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
        db_table = "fintech_event"
        managed = False
        ordering = ["aggregate_id", "version"]

    def __str__(self) -> str:
        return f"{self.event_type} v{self.version} of {self.aggregate_id}"


class IdempotencyRecord(models.Model):
    """The first response to a POST carrying an Idempotency-Key, replayed for retries of the same request."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField(null=True)
    response_headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        db_table = "fintech_idempotency"
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="idempotency_owner_key_unique")]

    def __str__(self) -> str:
        return f"{self.key} ({self.response_status})"
