"""The ledger in the admin: read-only pages for its accounts, entries, postings, transfers, holds, settlement
batches and booking alerts, and the finance role's transfer form. Who sees which page, and who may transfer, is
fintech.policy's to say."""

import functools
import operator
import re
import uuid
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Sum
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join

from fintech import policy
from fintech.admin import NoWrites, ReadOnlyAdmin, pretty_json, search_uuid
from fintech.api import no_card_numbers
from fintech.masking import mask_pans
from fintech.models import StaffAuditRecord
from fintech.money import CURRENCY_EXPONENTS, Money, MoneyError
from fintech.staffaudit import staff_audit_record
from ledger import services
from ledger.domain import COMPANY, COMPANY_OWNER_ID, CUSTOMER, MERCHANT, LedgerError
from ledger.models import (
    Account,
    BookingAlert,
    Hold,
    JournalEntry,
    Posting,
    ReconciliationRun,
    SettlementBatch,
    SettlementLine,
    Transfer,
)

# Read-only pages over the ledger tables, plus one command: the finance role's transfer form, which calls the
# same service as the API. Lists stay cheap on big tables: no full count, related rows joined, exact searches
# only (each admin's get_search_results searches; its search_fields just shows the search box), no filter that
# reads the distinct values of a whole table.

LATEST_POSTINGS = 50
# A plain decimal in major units: Money.from_decimal_string alone would take "1e3" for 1000 and "-5" as well.
DECIMAL_AMOUNT = re.compile(r"[0-9]+(\.[0-9]+)?")


def _formatted(minor: int, currency: str) -> str:
    return str(Money(minor, currency))


def _search_uuid_any(queryset, fields: tuple[str, ...], term: str):
    """Rows whose UUID field, any of `fields`, is the term; None when the term is not a UUID."""
    matches = [search_uuid(queryset, field, term) for field in fields]
    if matches[0] is None:
        return None
    return functools.reduce(operator.or_, matches)


class ExactSearch:
    """Search by exact ids (`uuid_search_fields`) or, for a term that is no UUID, the exact reference."""

    uuid_search_fields: tuple[str, ...] = ()
    reference_search = True

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        by_id = _search_uuid_any(queryset, self.uuid_search_fields, term)
        if by_id is not None:
            return by_id, False
        return (queryset.filter(reference=term) if self.reference_search else queryset.none()), False


class CurrencyFilter(admin.SimpleListFilter):
    """The currencies of the company's accounts. Money enters the ledger only against one of them (trust or
    clearing, opened at the first entry in a currency), so these are all the currencies with postings, read from
    an index, where the default filter would read the distinct currencies of the whole listed table."""

    title = "currency"
    parameter_name = "currency"

    def lookups(self, request, model_admin):
        currencies = (
            Account.objects.filter(owner_type=COMPANY, owner_id=COMPANY_OWNER_ID)
            .order_by("currency")
            .values_list("currency", flat=True)
            .distinct()
        )
        return [(currency, currency) for currency in currencies]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(currency=self.value())
        return queryset


class ReadOnlyInline(NoWrites, admin.TabularInline):
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    def has_view_permission(self, request, obj=None) -> bool:
        return policy.may_view_admin(request.user, self.opts.label_lower)


class PostingInline(ReadOnlyInline):
    model = Posting
    fields = ("account", "bucket", "amount", "currency", "created_at")
    readonly_fields = fields
    ordering = ("id",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account")


class SettlementLineInline(ReadOnlyInline):
    model = SettlementLine
    fields = ("merchant_id", "currency", "payments", "amount", "entry")
    readonly_fields = fields
    ordering = ("merchant_id", "currency")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("entry")


class TransferForm(forms.Form):
    from_account = forms.UUIDField(label="From account id")
    to_account = forms.UUIDField(label="To account id")
    amount = forms.CharField(
        max_length=40, help_text="In major units with the currency's decimals: 1000 is 1,000 JPY, 10.50 is 10.50 USD."
    )
    currency = forms.ChoiceField(choices=[("", "---------"), *((code, code) for code in sorted(CURRENCY_EXPONENTS))])
    reference = forms.CharField(max_length=200, required=False)
    # Chosen when the form is first shown: submitting the same form twice (a double click, a resent POST)
    # returns the first transfer instead of moving the money again.
    transfer_id = forms.UUIDField(widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        text, currency = cleaned.get("amount"), cleaned.get("currency")
        if text is None or not currency:
            return cleaned
        if not DECIMAL_AMOUNT.fullmatch(text):
            self.add_error("amount", "Enter a positive decimal amount such as 1000 or 10.50.")
            return cleaned
        try:
            money = Money.from_decimal_string(text, currency)
        except MoneyError as error:
            self.add_error("amount", str(error))
            return cleaned
        if not money.is_positive():
            self.add_error("amount", "The amount must be positive.")
            return cleaned
        cleaned["money"] = money
        return cleaned

    def clean_reference(self) -> str:
        reference = self.cleaned_data["reference"]
        try:
            return no_card_numbers(reference)
        except ValidationError:
            # The form shown again with the error must not repeat the number either.
            self.data = self.data.copy()
            self.data["reference"] = mask_pans(reference)
            raise


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "owner_type", "owner_id", "currency", "available", "pending", "floor", "updated_at")
    list_filter = ("kind", "owner_type", CurrencyFilter)
    # The unique (owner_type, owner_id, kind, currency) index gives this order without sorting.
    ordering = ("owner_type", "owner_id", "kind", "currency")
    search_fields = ("=owner_id",)
    search_help_text = "An account id or an owner id (customer id, merchant id, company)."
    fields = (
        "id",
        "kind",
        "owner_type",
        "owner_id",
        "currency",
        "available_balance",
        "pending_balance",
        "floor_amount",
        "version",
        "created_at",
        "updated_at",
        "latest_postings",
    )
    readonly_fields = fields
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # Owner searches name the owner type too, so that the (owner_type, owner_id, ...) index answers them.
        by_id = search_uuid(queryset, "id", term)
        if by_id is not None:
            # A customer owns its accounts under its id, a UUID too, stored in its canonical form.
            return by_id | queryset.filter(owner_type=CUSTOMER, owner_id=str(uuid.UUID(term))), False
        return queryset.filter(owner_type__in=(MERCHANT, COMPANY), owner_id=term), False

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "may_transfer": policy.may_move_money(request.user)}
        return super().changelist_view(request, extra_context=extra_context)

    def get_urls(self):
        transfer = path("transfer/", self.admin_site.admin_view(self.transfer_view), name="ledger_account_transfer")
        # Before the defaults: their "<path:object_id>/" would take "transfer/" for an account id.
        return [transfer, *super().get_urls()]

    # The account row is updated in the transaction that writes the postings: these are the strongly
    # consistent balances, never a projection that may lag.
    @admin.display(description="available (ledger)")
    def available_balance(self, account: Account) -> str:
        return _formatted(account.available, account.currency)

    @admin.display(description="pending (ledger)")
    def pending_balance(self, account: Account) -> str:
        return _formatted(account.pending, account.currency)

    @admin.display(description="floor")
    def floor_amount(self, account: Account) -> str:
        return "none" if account.floor is None else _formatted(account.floor, account.currency)

    @admin.display(description=f"latest {LATEST_POSTINGS} postings")
    def latest_postings(self, account: Account) -> str:
        postings = account.postings.select_related("entry").order_by("-id")[:LATEST_POSTINGS]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><a href='{}'>{} {}</a></td><td>{}</td><td style='text-align: right'>{}</td></tr>",
            (
                (
                    date_format(timezone.localtime(posting.created_at), "DATETIME_FORMAT"),
                    reverse("admin:ledger_journalentry_change", args=[posting.entry_id]),
                    posting.entry.kind,
                    posting.entry_id,
                    posting.bucket,
                    _formatted(posting.amount, posting.currency),
                )
                for posting in postings
            ),
        )
        if not rows:
            return "none"
        every = reverse("admin:ledger_posting_changelist") + "?" + urlencode({"q": str(account.id)})
        return format_html(
            "<table><tr><th>at</th><th>journal entry</th><th>bucket</th><th>amount</th></tr>{}</table>"
            "<p><a href='{}'>All postings of this account</a></p>",
            rows,
            every,
        )

    def transfer_view(self, request):
        if not policy.may_move_money(request.user):
            raise PermissionDenied
        if request.method == "POST":
            # Every submission of the money form, before it is checked: refused and failed ones are in the trail
            # too (the reference is masked of card numbers there).
            staff_audit_record(
                request=request,
                action=StaffAuditRecord.MONEY_FORM,
                target="ledger.transfer:" + request.POST.get("transfer_id", ""),
                detail=" ".join(
                    f"{name}={request.POST.get(name, '')}"
                    for name in ("from_account", "to_account", "amount", "currency", "reference")
                ),
            )
        form = TransferForm(request.POST if request.method == "POST" else None, initial={"transfer_id": uuid.uuid4()})
        if form.is_valid():
            data = form.cleaned_data
            try:
                transfer = services.transfer_create(
                    from_account=data["from_account"],
                    to_account=data["to_account"],
                    amount=data["money"],
                    reference=data["reference"],
                    actor=f"admin:{request.user.pk}",
                    transfer_id=data["transfer_id"],
                )
            except LedgerError as error:
                form.add_error(None, f"{error} ({error.code})")
            else:
                money = data["money"]
                # A resubmitted form gets the first transfer back: it was logged then.
                if not LogEntry.objects.filter(
                    content_type=ContentType.objects.get_for_model(Transfer), object_id=str(transfer.id)
                ).exists():
                    self.log_addition(
                        request,
                        transfer,
                        f"Transferred {money} from account {transfer.from_account_id} to {transfer.to_account_id}",
                    )
                messages.success(request, f"Transfer {transfer.id} completed: {money}.")
                return redirect("admin:ledger_transfer_change", transfer.id)
        context = {
            **self.admin_site.each_context(request),
            "title": "Transfer between accounts",
            "opts": self.opts,
            "form": form,
        }
        return TemplateResponse(request, "admin/ledger/account/transfer.html", context)


@admin.register(JournalEntry)
class JournalEntryAdmin(ExactSearch, ReadOnlyAdmin):
    list_display = ("created_at", "kind", "reference", "actor", "payment_id")
    ordering = ("-created_at",)
    search_fields = ("=reference",)
    search_help_text = "An entry id, a payment id, or an exact reference."
    fields = ("id", "kind", "reference", "actor", "event_id", "payment_id", "settlement_date", "created_at")
    readonly_fields = fields
    inlines = (PostingInline,)
    show_full_result_count = False

    uuid_search_fields = ("id", "payment_id")


@admin.register(Posting)
class PostingAdmin(ExactSearch, ReadOnlyAdmin):
    list_display = ("id", "created_at", "entry", "account", "bucket", "amount", "currency")
    list_select_related = ("entry", "account")
    list_filter = ("bucket", CurrencyFilter)
    ordering = ("-id",)
    search_fields = ("=id",)
    search_help_text = "An account id or a journal entry id."
    fields = ("id", "entry", "account", "bucket", "amount", "currency", "created_at")
    readonly_fields = fields
    show_full_result_count = False

    uuid_search_fields = ("account_id", "entry_id")
    reference_search = False


@admin.register(Transfer)
class TransferAdmin(ExactSearch, ReadOnlyAdmin):
    list_display = ("created_at", "id", "from_account", "to_account", "amount", "currency", "status", "reference")
    list_select_related = ("from_account", "to_account")
    list_filter = ("status", CurrencyFilter)
    ordering = ("-created_at",)
    search_fields = ("=reference",)
    search_help_text = "A transfer id, an account id, or an exact reference."
    fields = ("id", "from_account", "to_account", "amount", "currency", "reference", "status", "actor", "created_at")
    readonly_fields = fields
    show_full_result_count = False

    uuid_search_fields = ("id", "from_account_id", "to_account_id")


@admin.register(Hold)
class HoldAdmin(ExactSearch, ReadOnlyAdmin):
    list_display = ("created_at", "id", "account", "amount", "currency", "status", "reference", "closed_at")
    list_select_related = ("account",)
    list_filter = ("status", CurrencyFilter)
    ordering = ("-created_at",)
    search_fields = ("=reference",)
    search_help_text = "A hold id, an account id, or an exact reference."
    fields = ("id", "account", "amount", "currency", "reference", "status", "created_at", "closed_at")
    readonly_fields = fields
    show_full_result_count = False

    uuid_search_fields = ("id", "account_id")


@admin.register(SettlementBatch)
class SettlementBatchAdmin(ReadOnlyAdmin):
    list_display = ("settlement_date", "id", "merchants", "payments", "actor", "created_at")
    ordering = ("-settlement_date",)
    date_hierarchy = "settlement_date"
    search_fields = ("=id",)
    search_help_text = "A batch id."
    fields = ("id", "settlement_date", "actor", "created_at")
    readonly_fields = fields
    inlines = (SettlementLineInline,)
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        by_id = search_uuid(queryset, "id", term)
        return (queryset.none() if by_id is None else by_id), False

    def get_queryset(self, request):
        # Per batch (a day's): its lines are a handful per merchant, counted on the page's rows only.
        return super().get_queryset(request).annotate(line_count=Count("lines"), payment_count=Sum("lines__payments"))

    @admin.display(description="lines (merchant × currency)", ordering="line_count")
    def merchants(self, batch) -> int:
        return batch.line_count

    @admin.display(description="payments", ordering="payment_count")
    def payments(self, batch) -> int:
        return batch.payment_count or 0


@admin.register(BookingAlert)
class BookingAlertAdmin(ExactSearch, ReadOnlyAdmin):
    """Payment events the ledger's bookings refused into suspense: each waits for an operator."""

    list_display = ("created_at", "event_type", "payment_id", "amount", "currency", "suspense_entry", "reason")
    list_filter = ("event_type", CurrencyFilter)
    ordering = ("-created_at",)
    search_fields = ("=event_id",)
    search_help_text = "A payment id or an event id."
    fields = (
        "id",
        "event_id",
        "event_type",
        "payment_id",
        "amount",
        "currency",
        "suspense_entry",
        "reason",
        "created_at",
    )
    readonly_fields = fields
    show_full_result_count = False

    uuid_search_fields = ("payment_id", "event_id")
    reference_search = False


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyAdmin):
    """Every reconciliation's verdict (the `reconcile` command, the console's reconciliation page)."""

    list_display = ("ran_at", "actor", "ok", "difference_count")
    list_filter = ("ok",)
    ordering = ("-ran_at",)
    date_hierarchy = "ran_at"
    fields = ("ran_at", "actor", "ok", "difference_count", "currencies_shown", "differences_shown")
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="per currency")
    def currencies_shown(self, run: ReconciliationRun) -> str:
        return pretty_json(run.currencies)

    @admin.display(description="differences tied to no currency")
    def differences_shown(self, run: ReconciliationRun) -> str:
        return pretty_json(run.differences)
