"""Merchants' webhook endpoints and their deliveries in the admin, read-only (fintech.policy.WEBHOOK_PAGES: support
and auditors) but for sending a delivery again; merchants change endpoints through the API. The sealed secret is
never shown, nor a delivery's body (the payment it carries is on the payment's own page)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from fintech import policy
from fintech.admin import ReadOnlyAdmin
from notifications import services
from notifications.models import WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(ReadOnlyAdmin):
    list_display = ("id", "merchant_id", "url", "events", "created_at", "created_by", "deleted_at")
    list_filter = ("deleted_at",)
    search_fields = ("merchant_id", "url")
    exclude = ("wrapped_key", "kek_key_id")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "merchant_id", "type", "payment_id", "state", "attempts", "last_status_code")
    list_filter = ("state", "type")
    search_fields = ("merchant_id", "=payment_id", "=notification_id")
    exclude = ("body",)

    def get_actions(self, request):
        # ReadOnlyAdmin offers no action; this one is a command, for whom the access policy allows it.
        if not policy.may_resend_notifications(request.user):
            return {}
        return {"retry": self.get_action("retry")}

    @admin.action(description="Send again now")
    def retry(self, request, queryset):
        if not policy.may_resend_notifications(request.user):
            raise PermissionDenied
        for delivery in queryset:
            services.webhook_delivery_retry(merchant_id=delivery.merchant_id, delivery_id=delivery.id)
        self.message_user(request, f"{queryset.count()} deliveries will be sent again.", messages.SUCCESS)
