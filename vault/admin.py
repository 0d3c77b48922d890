from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse

from fintech import policy
from fintech.admin import CommandAudit, ReadOnlyAdmin, ViewAudit
from fintech.api import no_card_numbers
from fintech.models import StaffAuditRecord
from fintech.staffaudit import staff_audit_record
from vault import services
from vault.models import Card, DetokenizationAudit


class PurposeForm(forms.Form):
    purpose = forms.CharField(max_length=500, widget=forms.TextInput(attrs={"size": 60}), validators=[no_card_numbers])


@admin.register(Card)
class CardAdmin(CommandAudit, ViewAudit, ReadOnlyAdmin):
    """Masked data only; the number is shown solely through the audited detokenise action of the CDE role. Every
    view of these pages, and every detokenisation, is in the staff audit trail too."""

    list_display = ("token", "merchant_id", "brand", "masked", "exp_month", "exp_year", "created_at")
    list_filter = ("brand", "created_at")
    search_fields = ("=token", "=merchant_id", "=last4")
    date_hierarchy = "created_at"
    fields = ("token", "merchant_id", "brand", "masked", "last4", "exp_month", "exp_year", "created_at", "updated_at")
    readonly_fields = fields
    actions = ["detokenize_selected"]

    def get_actions(self, request):
        if not policy.may_detokenize(request.user):
            return {}
        return admin.ModelAdmin.get_actions(self, request)

    @admin.action(description="Detokenise selected cards (CDE, audited)")
    def detokenize_selected(self, request, queryset):
        tokens = list(queryset.values_list("token", flat=True))
        form = PurposeForm(request.POST if request.POST.get("confirm") else None)
        context = {**self.admin_site.each_context(request), "title": "Detokenise cards", "tokens": tokens}
        if not form.is_valid():
            return TemplateResponse(request, "admin/vault/detokenize.html", {**context, "form": form})
        purpose = form.cleaned_data["purpose"]
        numbers = []
        for token in tokens:
            # Before the vault is asked: the trail keeps the attempt whatever the vault answers (its own audit
            # keeps the outcome).
            staff_audit_record(
                request=request, action=StaffAuditRecord.DETOKENIZE, target=f"vault.card:{token}", detail=purpose
            )
            numbers.append(
                (token, services.card_detokenize(token=token, purpose=purpose, actor=request.user, channel="admin"))
            )
        response = TemplateResponse(request, "admin/vault/detokenize.html", {**context, "numbers": numbers})
        response["Cache-Control"] = "no-store"
        return response


@admin.register(DetokenizationAudit)
class DetokenizationAuditAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "actor", "token", "outcome", "channel", "purpose")
    list_filter = ("outcome", "channel", "occurred_at")
    search_fields = ("=token", "actor")
    date_hierarchy = "occurred_at"
