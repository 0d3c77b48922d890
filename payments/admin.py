from django.contrib import admin
from django.db.models import Exists, F, OuterRef, Subquery
from django.db.models.fields.json import KT
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from fintech import eventstore
from fintech.admin import ReadOnlyAdmin, UuidSearch, pretty_json
from fintech.models import Event
from payments.domain import AGGREGATE_TYPE, PaymentEvent
from payments.models import AuthorizationAttempt, PaymentStream

PAYMENT_EVENT_TYPES = sorted(cls.event_type for cls in PaymentEvent.__subclasses__())


def _initiated(value) -> Subquery:
    """A value of the payment's first event (PaymentInitiated), which names its merchant and amount."""
    first = Event.objects.filter(aggregate_id=OuterRef("stream_id"), version=1)
    return Subquery(first.annotate(value=value).values("value")[:1])


class EventTypeFilter(admin.SimpleListFilter):
    title = "has event"
    parameter_name = "event_type"

    def lookups(self, request, model_admin):
        return [(name, name) for name in PAYMENT_EVENT_TYPES]

    def queryset(self, request, queryset):
        if self.value() not in PAYMENT_EVENT_TYPES:
            return queryset
        return queryset.filter(
            Exists(Event.objects.filter(aggregate_id=OuterRef("stream_id"), event_type=self.value()))
        )


@admin.register(PaymentStream)
class PaymentAdmin(UuidSearch, ReadOnlyAdmin):
    list_display = ("stream_id", "merchant", "amount", "version", "created_at", "updated_at", "timeline")
    date_hierarchy = "created_at"
    list_filter = (EventTypeFilter, "created_at")
    search_fields = ("=merchant_id",)
    search_help_text = "A payment id or a merchant id."
    uuid_search_field = "stream_id"
    ordering = ("-created_at",)
    fields = ("stream_id", "merchant", "amount", "version", "created_at", "updated_at", "timeline", "history")
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(aggregate_type=AGGREGATE_TYPE)
            .annotate(
                merchant_id=_initiated(KT("event_data__merchant_id")), amount_json=_initiated(F("event_data__amount"))
            )
        )

    @admin.display(description="merchant", ordering="merchant_id")
    def merchant(self, payment) -> str:
        return payment.merchant_id

    @admin.display(description="amount")
    def amount(self, payment) -> str:
        money = payment.amount_json or {}
        return f"{money.get('amount')} {money.get('currency')} (minor units)" if money else ""

    @admin.display(description="timeline")
    def timeline(self, payment) -> str:
        # The operations console's page of the payment (statuses, ledger entries, detokenisations), by URL name:
        # the console sits above this app and is not imported.
        try:
            url = reverse("admin:console_payment", args=[payment.stream_id])
        except NoReverseMatch:
            return ""
        return format_html("<a href='{}'>timeline</a>", url)

    @admin.display(description="events")
    def history(self, payment) -> str:
        # Every event, archived ones included (eventstore.load reads them back); only those still in the database
        # have a page of their own.
        events = eventstore.load(payment.stream_id)
        hot = set(Event.objects.filter(aggregate_id=payment.stream_id).values_list("event_id", flat=True))
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    e.version,
                    format_html(
                        "<a href='{}'>{}</a>", reverse("admin:fintech_event_change", args=[e.event_id]), e.event_type
                    )
                    if e.event_id in hot
                    else f"{e.event_type} (archived)",
                    e.occurred_at,
                    pretty_json(e.event.to_data()),
                )
                for e in events
            ),
        )
        return format_html("<table><tr><th>v</th><th>event</th><th>occurred</th><th>data</th></tr>{}</table>", rows)


@admin.register(AuthorizationAttempt)
class AuthorizationAttemptAdmin(UuidSearch, ReadOnlyAdmin):
    """Every authorization asked of the acquirer; an open one older than a minute is the recovery job's to
    settle (see payments.attempts)."""

    list_display = ("started_at", "idempotency_key", "merchant_id", "amount", "currency", "outcome", "resolved_by")
    list_filter = ("outcome", "resolved_by")
    search_fields = ("=merchant_id", "=idempotency_key")
    search_help_text = "A payment id, a merchant id or an attempt's key."
    uuid_search_field = "payment_id"
    ordering = ("-started_at",)
    fields = (
        "idempotency_key",
        "payment_id",
        "payment_version",
        "number",
        "merchant_id",
        "amount",
        "currency",
        "started_at",
        "outcome",
        "resolved_at",
        "resolved_by",
    )
    readonly_fields = fields
    show_full_result_count = False
