from django.contrib import admin

from fintech.admin import ReadOnlyAdmin
from projections.models import MerchantDailySummary, PaymentView, ProjectionState


@admin.register(ProjectionState)
class ProjectionStateAdmin(ReadOnlyAdmin):
    """Where each projection stands, and the error it stopped at, if any."""

    list_display = ("name", "events_applied", "checkpoint_position", "last_event_at", "updated_at", "stopped")
    readonly_fields = (
        "name",
        "checkpoint_transaction",
        "checkpoint_position",
        "events_applied",
        "last_event_at",
        "updated_at",
        "error_event_id",
        "error_at",
        "error",
    )

    @admin.display(boolean=True, description="stopped on an error")
    def stopped(self, state: ProjectionState) -> bool:
        return bool(state.error)


@admin.register(PaymentView)
class PaymentViewAdmin(ReadOnlyAdmin):
    list_display = ("payment_id", "merchant_id", "status", "amount", "currency", "created_at", "version")
    list_filter = ("status", "currency", "created_at")
    search_fields = ("=merchant_id",)
    date_hierarchy = "created_at"


@admin.register(MerchantDailySummary)
class MerchantDailySummaryAdmin(ReadOnlyAdmin):
    list_display = (
        "day",
        "merchant_id",
        "currency",
        "captured_count",
        "captured_amount",
        "refunded_count",
        "refunded_amount",
    )
    list_filter = ("currency", "day")
    search_fields = ("=merchant_id",)
    date_hierarchy = "day"
