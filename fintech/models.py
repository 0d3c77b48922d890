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


class StaffAuditRecord(models.Model):
    """What a staff user did in the back office: logins (and failed ones), views of pages holding personal or
    card data, detokenisations, money forms, exports and admin commands. Append-only in the database (a
    trigger, migration 0004) and written on a connection of its own (fintech.staffaudit), so a rolled-back
    request keeps its record. Who is kept as id and username both: the username stays readable if the user
    is deleted, the id if it is renamed."""

    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    VIEW = "view"
    DETOKENIZE = "detokenize"
    MONEY_FORM = "money_form"
    EXPORT = "export"
    COMMAND = "command"
    ACTIONS = [(a, a) for a in (LOGIN, LOGIN_FAILED, VIEW, DETOKENIZE, MONEY_FORM, EXPORT, COMMAND)]

    occurred_at = models.DateTimeField(db_index=True)
    user_id = models.IntegerField(null=True)
    username = models.CharField(max_length=150, db_index=True)
    action = models.CharField(max_length=16, choices=ACTIONS)
    object = models.CharField(max_length=300, help_text="model label and primary key, or the path")
    detail = models.CharField(max_length=500)
    ip = models.CharField("from (IP)", max_length=45)
    user_agent = models.CharField(max_length=200)

    class Meta:
        db_table = "fintech_staffaudit"
        # Created by raw SQL with its trigger, and kept out of Django's flush (which truncates managed tables).
        managed = False
        ordering = ["-occurred_at"]
        verbose_name = "staff audit record"

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.object}"
