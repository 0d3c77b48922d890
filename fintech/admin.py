import json
import uuid

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import SEARCH_VAR
from django.utils.html import format_html

from fintech import policy
from fintech.models import Event, StaffAuditRecord
from fintech.staffaudit import staff_audit_record


class NoWrites:
    """Nobody adds, changes or deletes through this admin page or inline (immutable data, issued secrets)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class CommandAudit:
    """Every admin action run on this page (a command: revoke tokens, detokenise cards, ...) is recorded in the
    staff audit trail before it runs, with the rows it was run on; refused ones too (the trail says who tried)."""

    def response_action(self, request, queryset):
        selected = request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)
        staff_audit_record(
            request=request,
            action=StaffAuditRecord.COMMAND,
            target=self.opts.label_lower,
            detail=f"{request.POST.get('action', '')} on {', '.join(selected)}",
        )
        return super().response_action(request, queryset)


def _filters(request) -> str:
    """The list's filters as recorded: the search term itself is left out (on the customer list it is an e-mail
    address, personal data the trail must not hold in clear), only that there was one."""
    query = request.GET.copy()
    if query.get(SEARCH_VAR):
        query[SEARCH_VAR] = "(search)"
    return query.urlencode(safe="()")


class ViewAudit:
    """Every view of this page (its list and each row's page) is recorded in the staff audit trail: the pages
    that hold personal or card data, masked or not."""

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context=extra_context)
        if response.status_code == 200 and request.method == "GET":
            staff_audit_record(
                request=request, action=StaffAuditRecord.VIEW, target=self.opts.label_lower, detail=_filters(request)
            )
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url=form_url, extra_context=extra_context)
        if response.status_code == 200:
            # The URL holds the key as the admin quotes it (a token's "_" reads "_5F"); the trail names the row.
            target = f"{self.opts.label_lower}:{unquote(object_id)}"
            staff_audit_record(request=request, action=StaffAuditRecord.VIEW, target=target)
        return response


class ReadOnlyAdmin(NoWrites, admin.ModelAdmin):
    """Immutable data: whom the access policy lets see the page can look, nobody can add, change or delete."""

    def has_module_permission(self, request) -> bool:
        return policy.may_view_admin(request.user, self.opts.label_lower)

    def has_view_permission(self, request, obj=None) -> bool:
        return policy.may_view_admin(request.user, self.opts.label_lower)

    def get_actions(self, request):
        return {}


def search_uuid(queryset, field: str, term: str):
    """Exact lookup of a UUID field when the term is one; None otherwise."""
    try:
        return queryset.filter(**{field: uuid.UUID(term.strip())})
    except ValueError:
        return None


class UuidSearch:
    """A search term that is a UUID finds the rows whose `uuid_search_field` is it, exactly (one index look-up);
    any other term goes to the page's own `search_fields`."""

    uuid_search_field = ""

    def get_search_results(self, request, queryset, search_term):
        by_id = search_uuid(queryset, self.uuid_search_field, search_term)
        if by_id is not None:
            return by_id, False
        return super().get_search_results(request, queryset, search_term)


def pretty_json(value) -> str:
    return format_html("<pre style='white-space: pre-wrap'>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "event_type", "aggregate_type", "aggregate_id", "version", "actor")
    list_filter = ("aggregate_type", "event_type", "occurred_at")
    date_hierarchy = "occurred_at"
    search_fields = ("event_type", "event_data__merchant_id")
    search_help_text = "An aggregate or event id, an event type, or a merchant id."
    ordering = ("-occurred_at",)
    fields = (
        "event_id",
        "aggregate_type",
        "aggregate_id",
        "version",
        "event_type",
        "event_version",
        "occurred_at",
        "created_at",
        "data",
        "meta",
    )
    readonly_fields = fields
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        by_id = search_uuid(queryset, "aggregate_id", search_term)
        if by_id is not None:
            return by_id | search_uuid(queryset, "event_id", search_term), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description="actor")
    def actor(self, event: Event) -> str:
        return event.metadata.get("actor", "")

    @admin.display(description="event data")
    def data(self, event: Event) -> str:
        return pretty_json(event.event_data)

    @admin.display(description="metadata")
    def meta(self, event: Event) -> str:
        return pretty_json(event.metadata)


@admin.register(StaffAuditRecord)
class StaffAuditAdmin(ReadOnlyAdmin):
    """The staff audit trail, for auditors and superusers (fintech.policy): read-only, as the database keeps it."""

    list_display = ("occurred_at", "username", "action", "object", "detail", "ip", "user_agent")
    list_filter = ("action", "occurred_at", "username")
    date_hierarchy = "occurred_at"
    search_fields = ("=username", "object")
    search_help_text = "An exact username, or part of an object (model label, id or path)."
    ordering = ("-occurred_at",)
    fields = ("occurred_at", "user_id", "username", "action", "object", "detail", "ip", "user_agent")
    readonly_fields = fields
    show_full_result_count = False
