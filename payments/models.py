from django.db import models

from fintech.models import Stream


class PaymentStream(Stream):
    """A payment as the admin lists it: its stream, whose events are the payment's whole history."""

    class Meta:
        proxy = True
        verbose_name = "payment"


class AuthorizationAttempt(models.Model):
    """One authorization asked of the acquirer, committed (on a connection of its own) before it is asked.

    Its outcome is set in the transaction that records the acquirer's answer on the payment, under the payment's
    lock: an attempt still open when nobody holds that lock is an answer nobody recorded (a lost answer, a
    process killed between the approval and the commit), which the recovery job settles with the acquirer.
    The outcome is set once (a trigger refuses any other change, and deletion)."""

    OPEN = ""
    APPROVED = "approved"
    DECLINED = "declined"
    VOIDED = "voided"
    NOT_RECEIVED = "not_received"
    OUTCOMES = [
        (OPEN, "open"),
        (APPROVED, "approved, recorded"),
        (DECLINED, "declined"),
        (VOIDED, "approved but not recorded: voided"),
        (NOT_RECEIVED, "not received by the acquirer"),
    ]
    BY_COMMAND = "command"
    BY_RECOVERY = "recovery"

    id = models.BigAutoField(primary_key=True)
    payment_id = models.UUIDField()
    payment_version = models.PositiveIntegerField(help_text="the version of the payment it would authorize")
    number = models.PositiveIntegerField(help_text="1, 2, … among the attempts at that version")
    idempotency_key = models.CharField(max_length=100, unique=True, help_text="sent to the acquirer")
    merchant_id = models.CharField(max_length=64)
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    started_at = models.DateTimeField()
    outcome = models.CharField(max_length=16, choices=OUTCOMES, blank=True, default=OPEN)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=16, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["payment_id", "payment_version", "number"], name="payments_attempt_number"),
        ]
        indexes = [
            models.Index(fields=["started_at"], name="payments_attempt_open", condition=models.Q(outcome="")),
        ]

    def __str__(self) -> str:
        return self.idempotency_key


class SimulatedAuthorization(models.Model):
    """The sandbox acquirer's own memory of what it answered, by idempotency key: what a real acquirer keeps on
    its side, so it outlives any process of ours (query, void, a replayed answer after a crash)."""

    idempotency_key = models.CharField(max_length=100, primary_key=True)
    payment_id = models.UUIDField()
    approved = models.BooleanField()
    response_code = models.CharField(max_length=8)
    reason = models.CharField(max_length=64)
    authorization_code = models.CharField(max_length=16, blank=True, default="", help_text="empty when declined")
    network_response = models.JSONField()
    created_at = models.DateTimeField()
    voided_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.idempotency_key
