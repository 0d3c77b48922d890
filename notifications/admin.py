"""Merchants' webhook endpoints in the admin, read-only (fintech.policy.WEBHOOK_PAGES: support and auditors);
merchants change them through the API. The sealed secret is never shown."""

from django.contrib import admin

from fintech.admin import ReadOnlyAdmin
from notifications.models import WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ("id", "merchant_id", "url", "events", "created_at", "created_by", "deleted_at")
    list_filter = ("deleted_at",)
    search_fields = ("merchant_id", "url")
    exclude = ("wrapped_key", "kek_key_id")
