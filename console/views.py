"""The console's pages inside the admin (registered by console.admin). Thin: each asks fintech.policy, reads
through console.selectors, acts through console.services, and records in the staff audit trail what it showed
of card data and what it started."""

from __future__ import annotations

import uuid

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST

from console import selectors, services
from console.forms import PaymentSearchForm
from console.models import Operation
from fintech import policy
from fintech.models import StaffAuditRecord
from fintech.staffaudit import staff_audit_record
from projections.selectors import projection_status_list

SEARCH_LIMIT = 100


def _page(request, template: str, title: str, context: dict) -> TemplateResponse:
    return TemplateResponse(request, template, {**admin.site.each_context(request), "title": title, **context})


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


def dashboard_context(request) -> dict:
    """The admin front page's panels (fintech.admin_site.StaffAdminSite.index)."""
    if not policy.may_use_admin(request.user):
        return {}
    return {"dashboard": selectors.dashboard(request.user)}


@require_GET
def payment_search(request):
    _require(policy.may_view_admin(request.user, selectors.PAYMENT_PAGE))
    form = PaymentSearchForm(request.GET or None)
    results = None
    if form.is_bound and form.is_valid():
        search = form.search()
        results = selectors.payment_search(search, limit=SEARCH_LIMIT)
        if search.last4 or results:
            # Results show cards (masked) and the criteria may be a card's last digits.
            fields = sorted(name for name, value in form.cleaned_data.items() if value not in (None, ""))
            staff_audit_record(
                request=request,
                action=StaffAuditRecord.VIEW,
                target="console.payment_search",
                detail=f"searched by {', '.join(fields)}: {len(results)} result(s)",
            )
    return _page(
        request,
        "console/payment_search.html",
        "Search payments",
        {"form": form, "results": results, "limit": SEARCH_LIMIT},
    )


@require_GET
def payment_timeline(request, payment_id: uuid.UUID):
    _require(policy.may_view_admin(request.user, selectors.PAYMENT_PAGE))
    context = selectors.timeline(request.user, payment_id)
    if context is None:
        raise Http404("no such payment")
    staff_audit_record(request=request, action=StaffAuditRecord.VIEW, target=f"console.timeline:{payment_id}")
    return _page(request, "console/timeline.html", f"Payment {payment_id}", context)


@require_GET
def projections(request):
    _require(policy.may_view_admin(request.user, selectors.PROJECTION_PAGE))
    operations = [op for op in selectors.operation_list() if op.kind != Operation.RECONCILE]
    return _page(
        request,
        "console/projections.html",
        "Projections",
        {
            "statuses": projection_status_list(),
            "operations": operations,
            "refresh": any(op.state in Operation.OPEN for op in operations),
            "may_operate": policy.may_operate(request.user),
        },
    )


@require_POST
def projection_operation(request, name: str, kind: str):
    _require(policy.may_operate(request.user) and kind in (Operation.REPLAY, Operation.REBUILD_CACHE))
    return _start(request, kind=kind, target=name, back="admin:console_projections")


@require_GET
def reconciliation(request):
    _require(policy.may_view_admin(request.user, selectors.RECONCILIATION_PAGE))
    operations = [op for op in selectors.operation_list() if op.kind == Operation.RECONCILE][:5]
    runs = selectors.reconciliation_runs(limit=10)
    return _page(
        request,
        "console/reconciliation.html",
        "Reconciliation",
        {
            "runs": runs,
            "latest": runs[0] if runs else None,
            "operations": operations,
            "refresh": any(op.state in Operation.OPEN for op in operations),
            "may_reconcile": policy.may_reconcile(request.user),
        },
    )


@require_POST
def reconciliation_run(request):
    _require(policy.may_reconcile(request.user))
    return _start(request, kind=Operation.RECONCILE, target="", back="admin:console_reconciliation")


def _start(request, *, kind: str, target: str, back: str):
    # Recorded before it is started, refused or not: the trail says who tried what.
    staff_audit_record(
        request=request, action=StaffAuditRecord.COMMAND, target=f"console.{kind}", detail=target or "ledger"
    )
    try:
        operation = services.operation_request(kind=kind, target=target, requested_by=request.user.get_username())
    except services.OperationRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"{operation.label} started: its progress shows below.")
    return redirect(back)
