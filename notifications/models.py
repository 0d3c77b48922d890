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
