"""The console in the admin: its pages behind the admin's login, its dashboard as the front page, and the
operations it ran as a read-only list."""

from django.contrib import admin

from console import selectors, views
from console.models import Operation
from fintech import policy
from fintech.admin import ReadOnlyAdmin


def _reads(page: str):
    return lambda user: policy.may_view_admin(user, page)


site = admin.site
site.page_register(
    "console/payments/",
    views.payment_search,
    "console_payments",
    app_label="console",
    title="Search payments",
    visible=_reads(selectors.PAYMENT_PAGE),
)
site.page_register("console/payments/<uuid:payment_id>/", views.payment_timeline, "console_payment")
site.page_register(
    "console/projections/",
    views.projections,
    "console_projections",
    app_label="console",
    title="Projections",
    visible=_reads(selectors.PROJECTION_PAGE),
)
site.page_register(
    "console/projections/<str:name>/<str:kind>/", views.projection_operation, "console_projection_operation"
)
site.page_register(
    "console/reconciliation/",
    views.reconciliation,
    "console_reconciliation",
    app_label="console",
    title="Reconciliation",
    visible=_reads(selectors.RECONCILIATION_PAGE),
)
site.page_register("console/reconciliation/run/", views.reconciliation_run, "console_reconciliation_run")
site.index_provide(views.dashboard_context, template="console/index.html")


@admin.register(Operation)
class OperationAdmin(ReadOnlyAdmin):
    """What staff started from the console, by whom, and how it ended."""

    list_display = ("requested_at", "kind", "target", "state", "requested_by", "done", "finished_at", "result")
    list_filter = ("kind", "state")
    ordering = ("-requested_at",)
    fields = (
        "id",
        "kind",
        "target",
        "state",
        "requested_by",
        "requested_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
        "done",
        "remaining",
        "result",
        "error",
    )
    readonly_fields = fields
