import uuid

from django.db import models
from django.utils import timezone


class WebhookEndpoint(models.Model):
    """A URL of a merchant's that receives the notifications it chose, signed with its secret. The secret is kept
    sealed by the vault (`wrapped_key`, under the KEK key `kek_key_id`): only a delivery reads it back. Deleting an
    endpoint sets `deleted_at`; its deliveries keep pointing at it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    merchant_id = models.CharField(max_length=64)
    url = models.CharField(max_length=2048)
    events = models.JSONField()
    wrapped_key = models.BinaryField()
    kek_key_id = models.BigIntegerField(null=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=200)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "notifications_webhook_endpoint"
        indexes = [models.Index(fields=["merchant_id", "created_at"], name="notif_endpoint_merchant")]

    def __str__(self) -> str:
        return f"webhook endpoint {self.id}"


class WebhookDelivery(models.Model):
    """One notification (a payment event) for one endpoint, written by the `webhooks` projection in the same
    transaction as its checkpoint, then sent until a 2xx answers it or WEBHOOK_RETRY_HOURS have passed. `body` is
    the exact JSON sent, so every attempt sends the same bytes; `notification_id` (the event's id) is what a
    receiver dedupes on. A payment's deliveries to an endpoint go out in version order: one waits while an earlier
    one is pending."""

    PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries")
    merchant_id = models.CharField(max_length=64)
    notification_id = models.UUIDField()
    type = models.CharField(max_length=40)
    payment_id = models.UUIDField()
    payment_version = models.IntegerField()
    body = models.TextField()
    state = models.CharField(max_length=16, default=PENDING)
    attempts = models.IntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    leased_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.IntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "notifications_webhook_delivery"
        constraints = [
            models.UniqueConstraint(fields=["notification_id", "endpoint"], name="notif_delivery_once"),
            models.CheckConstraint(
                condition=models.Q(state__in=["pending", "delivered", "failed"]), name="notif_delivery_state"
            ),
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], name="notif_delivery_due", condition=models.Q(state="pending")),
            models.Index(fields=["endpoint", "payment_id", "payment_version"], name="notif_delivery_order"),
            models.Index(fields=["endpoint", "-created_at"], name="notif_delivery_list"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.id}"
