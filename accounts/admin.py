"""Customers in the admin: lists show ids and dates only; decrypted personal data only on one customer's page,
read-only. Search is by customer id or by exact e-mail address through the blind index, never over PII."""

from django.contrib import admin

from accounts.models import Customer
from accounts.selectors import customer_email_index
from fintech.admin import ReadOnlyAdmin, search_uuid
from vault.fields import subject_forgotten_exists

PII_FIELDS = ("name", "email", "phone", "address", "date_of_birth")


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
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
