"""Customers in the admin: lists show ids and dates only; decrypted personal data only on one customer's page,
read-only, and only to those fintech.policy lets see it in clear (superusers): the auditor sees it masked. Every
view of a customer page is in the staff audit trail. Search is by customer id or by exact e-mail address through
the blind index, never over PII.

Users, groups and API tokens: the superusers' pages. Who sees which page is fintech.policy's to say (the ledger's
pages are ledger.admin's)."""

from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User

from accounts import services
from accounts.models import ApiToken, Customer
from accounts.selectors import customer_email_index
from fintech import policy
from fintech.admin import CommandAudit, NoWrites, ReadOnlyAdmin, ViewAudit, search_uuid
from vault.fields import subject_forgotten_exists

# --- Users, roles and API tokens ----------------------------------------------------------------------------
# Managed by superusers alone (fintech.policy): whoever hands out roles could otherwise take any of them.


class UserManagementAdmin:
    def has_module_permission(self, request) -> bool:
        return policy.may_manage_users(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return policy.may_manage_users(request.user)

    def has_add_permission(self, request, obj=None) -> bool:
        return policy.may_manage_users(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return policy.may_manage_users(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return policy.may_manage_users(request.user)


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class PolicyUserAdmin(UserManagementAdmin, UserAdmin):
    pass


@admin.register(Group)
class PolicyGroupAdmin(UserManagementAdmin, GroupAdmin):
    pass


@admin.register(ApiToken)
class ApiTokenAdmin(CommandAudit, NoWrites, UserManagementAdmin, admin.ModelAdmin):
    """Tokens by prefix: the key itself was shown once, when issued, and only its hash is stored (never shown).
    They are issued by `manage.py issue_api_token` and revoked here or by `manage.py revoke_api_token`."""

    list_display = ("prefix", "user", "created_at", "expires_at", "revoked_at", "last_used_at")
    list_select_related = ("user",)
    list_filter = ("created_at", "expires_at", "revoked_at")
    search_fields = ("=prefix", "=user__username")
    search_help_text = "A token prefix or a username."
    ordering = ("-created_at",)
    fields = ("prefix", "user", "created_at", "expires_at", "revoked_at", "last_used_at")
    readonly_fields = fields
    actions = ["revoke_selected"]

    def get_actions(self, request):
        # Only the revocation: no bulk delete (a revoked token stays on record).
        if not policy.may_manage_users(request.user):
            return {}
        return {name: action for name, action in super().get_actions(request).items() if name == "revoke_selected"}

    @admin.action(description="Revoke selected API tokens")
    def revoke_selected(self, request, queryset):
        tokens = list(queryset.filter(revoked_at__isnull=True))
        revoked = services.api_token_revoke(token_ids=[token.id for token in tokens])
        for token in tokens:
            self.log_change(request, token, "Revoked")
        messages.success(request, f"{revoked} API token(s) revoked.")


PII_FIELDS = ("name", "email", "phone", "address", "date_of_birth")
PII_MASK = "•••• (hidden from your role)"


def _pii_masked(field: str):
    @admin.display(description=field.replace("_", " "))
    def masked(self, customer: Customer) -> str:
        return PII_MASK

    masked.__name__ = f"{field}_masked"
    return masked


@admin.register(Customer)
class CustomerAdmin(ViewAudit, ReadOnlyAdmin):
    list_display = ("id", "created_at", "forgotten")
    list_filter = ("created_at",)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    # get_search_results below does the searching; this only shows the search box.
    search_fields = ("=id",)
    search_help_text = "A customer id, or an exact e-mail address."
    fields = ("id", "created_at", "forgotten", *PII_FIELDS)
    readonly_fields = fields
    show_full_result_count = False

    # The same rows with each personal field masked: what a role that may open the page but not see personal
    # data in clear (the auditor) gets. Never decrypted for it.
    name_masked, email_masked, phone_masked, address_masked, date_of_birth_masked = (
        _pii_masked(field) for field in PII_FIELDS
    )
    masked_fields = ("id", "created_at", "forgotten", *(f"{field}_masked" for field in PII_FIELDS))

    def get_fields(self, request, obj=None):
        return self.fields if policy.may_view_pii(request.user) else self.masked_fields

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(is_forgotten=subject_forgotten_exists("pk"))

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        by_id = search_uuid(queryset, "id", term)
        if by_id is not None:
            return by_id, False
        if "@" in term:
            return queryset.filter(email_index=customer_email_index(term)), False
        return queryset.none(), False

    @admin.display(description="forgotten", boolean=True, ordering="is_forgotten")
    def forgotten(self, customer: Customer) -> bool:
        return customer.is_forgotten
