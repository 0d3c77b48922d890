import uuid

from django.db import models


class Operation(models.Model):
    """A long command staff started from the console (replay a projection, rebuild its cache, reconcile), run by
    a Celery worker, with its progress. At most one of a kind and target is queued or running at a time (the
    database refuses a second), so two clicks never run two replays."""

    REPLAY, REBUILD_CACHE, RECONCILE = "replay", "rebuild_cache", "reconcile"
    KINDS = [(REPLAY, "replay projection"), (REBUILD_CACHE, "rebuild cache"), (RECONCILE, "reconcile")]
    QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
    STATES = [(QUEUED, QUEUED), (RUNNING, RUNNING), (DONE, DONE), (FAILED, FAILED)]
    OPEN = (QUEUED, RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=KINDS)
    target = models.CharField(max_length=64, blank=True, default="")
    state = models.CharField(max_length=8, choices=STATES, default=QUEUED)
    requested_by = models.CharField(max_length=150)
    requested_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True)
    # Written with each step of progress: an open operation whose heartbeat stopped was cut off (a killed worker).
    heartbeat_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)
    done = models.BigIntegerField(default=0)
    remaining = models.BigIntegerField(null=True)
    result = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")

    class Meta:
        db_table = "console_operation"
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "target"],
                condition=models.Q(state__in=["queued", "running"]),
                name="console_operation_one_open",
            ),
        ]
        indexes = [models.Index(fields=["-requested_at"], name="console_operation_requested")]

    def __str__(self) -> str:
        return f"{self.label} ({self.state})"

    @property
    def label(self) -> str:
        """What it does, to what: "replay projection payments", "reconcile"."""
        return f"{self.get_kind_display()} {self.target}".strip()

    @property
    def percent(self) -> int | None:
        if self.remaining is None:
            return None
        total = self.done + self.remaining
        return 100 if total == 0 else min(100, 100 * self.done // total)
