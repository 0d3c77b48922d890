"""Who may do what: the one access policy that the API, the admin and the management commands ask.

- Staff status is an admin login and nothing more.
- Money moves (ledger writes through the API, the admin's transfer form) are for the `finance` group, which
  also reads every ledger account; a merchant's users read their own merchant's accounts only.
- Card numbers (detokenisation through the API or the admin) are for holders of `vault.detokenize`, which the
  `cde` group carries.
- The `auditor` group reads every admin page of data, the audit trails included (detokenisations, the staff
  audit trail, events, the ledger, payments, authorization attempts, cards masked, customers), and changes
  nothing: it moves no money, never detokenises and sees customers' personal data masked (ids and dates only),
  the safer reading of "read everything": an audit needs to know that a record exists and who touched it, not
  the person's name.
- The `support` group sees cards masked (brand, last 4, expiry), payments and their timelines, and no customer
  page at all.
- Finance also reads payments (their timelines show the ledger entries they produced) and runs reconciliations
  from the console; replaying a projection or rebuilding its cache from the console is the superusers' (the
  operators').
- Customers' personal data in clear is the superusers' alone (`may_view_pii`).
- Superusers manage users, groups and API tokens and may look at every read-only admin page, but they are not
  silently every role: without the group they move no money and see no card number.
- A merchant's users act for their merchant only (payments, vault tokens).

Pure functions of a user; what they look up (groups, the detokenise permission, the merchant link) is cached
on the user object, so one request asks the database once.
"""

from __future__ import annotations

from django.contrib.auth.models import Permission
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Q

SUPPORT, FINANCE, CDE, AUDITOR = "support", "finance", "cde", "auditor"
ROLES = (SUPPORT, FINANCE, CDE, AUDITOR)
DETOKENIZE_APP, DETOKENIZE_CODENAME = "vault", "detokenize"

# Admin pages by model label. The user pages hand out roles, so they are the superusers' alone.
USER_PAGES = frozenset({"auth.user", "auth.group", "accounts.apitoken"})
LEDGER_PAGES = frozenset(
    {
        "ledger.account",
        "ledger.journalentry",
        "ledger.posting",
        "ledger.transfer",
        "ledger.hold",
        "ledger.settlementbatch",
        "ledger.settlementline",
        "ledger.bookingalert",
        "ledger.reconciliationrun",
    }
)
# What a role reads in the admin without any model permission of its own. Anything else a staff user sees
# comes from a model's view permission, granted by a superuser.
CARD_PAGES = frozenset({"vault.card"})
# A payment's page and timeline, and the payments read model: what support answers merchants from, and what
# finance follows money from. Their cards show masked; their ledger entries and detokenisations only to whom may
# read those.
PAYMENT_PAGES = frozenset({"payments.paymentstream", "projections.paymentview"})
# Where a merchant's notifications go: what support looks at when a merchant says it heard of nothing.
WEBHOOK_PAGES = frozenset({"notifications.webhookendpoint", "notifications.webhookdelivery"})
# Every page of data and every audit trail: the auditor's. Not the user pages (USER_PAGES above).
AUDIT_PAGES = frozenset(
    {
        *LEDGER_PAGES,
        *CARD_PAGES,
        "vault.detokenizationaudit",
        "fintech.staffauditrecord",
        "fintech.event",
        "payments.paymentstream",
        "payments.authorizationattempt",
        "projections.projectionstate",
        "projections.paymentview",
        "projections.merchantdailysummary",
        "accounts.customer",
        "console.operation",
        "archive.retentionpolicy",
        "archive.retentionchange",
        "archive.purgerecord",
        "archive.archiveobject",
        *WEBHOOK_PAGES,
    }
)
ROLE_PAGES = {
    FINANCE: LEDGER_PAGES | PAYMENT_PAGES,
    CDE: CARD_PAGES,
    SUPPORT: CARD_PAGES | PAYMENT_PAGES | WEBHOOK_PAGES,
    AUDITOR: AUDIT_PAGES,
}

_ROLES_CACHE = "_access_roles"
_DETOKENIZE_CACHE = "_access_may_detokenize"


def _active(user) -> bool:
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_active", False))


def roles_of(user) -> frozenset[str]:
    """The roles (groups) of an active user; none for anyone else."""
    if not _active(user):
        return frozenset()
    if not hasattr(user, _ROLES_CACHE):
        setattr(user, _ROLES_CACHE, frozenset(user.groups.values_list("name", flat=True)))
    return getattr(user, _ROLES_CACHE)


def merchant_of(user) -> str | None:
    """The merchant an active user acts for, or None (staff and operators act for none)."""
    if not _active(user):
        return None
    try:
        return user.merchant_link.merchant_id
    except ObjectDoesNotExist:
        return None


def may_move_money(user) -> bool:
    """Ledger writes (accounts, deposits, transfers, holds) and the admin's transfer form: the finance role."""
    return FINANCE in roles_of(user)


def may_read_ledger(user, *, owner: tuple[str, str]) -> bool:
    """Whether the user may read a ledger account of this (owner_type, owner_id): finance reads every account,
    a merchant's users their merchant's."""
    return ledger_readable(owner, finance=may_move_money(user), merchant_id=merchant_of(user))


def ledger_readable(owner: tuple[str, str], *, finance: bool, merchant_id: str | None) -> bool:
    """may_read_ledger's rule, from what it reads of the user (also what a cached API token principal keeps)."""
    return finance or (merchant_id is not None and owner == ("merchant", merchant_id))


def may_detokenize(user) -> bool:
    """Whether the user holds vault.detokenize, itself or through a group (the CDE role). Being a superuser is
    not enough: seeing card numbers is granted explicitly, never implied."""
    if not _active(user):
        return False
    if not hasattr(user, _DETOKENIZE_CACHE):
        # Not user.has_perm: Django's backend grants a superuser every permission.
        granted = Permission.objects.filter(
            Q(user=user) | Q(group__user=user),
            content_type__app_label=DETOKENIZE_APP,
            codename=DETOKENIZE_CODENAME,
        ).exists()
        setattr(user, _DETOKENIZE_CACHE, granted)
    return getattr(user, _DETOKENIZE_CACHE)


def may_view_pii(user) -> bool:
    """Customers' personal data in clear (the customer page): superusers only. Every other role that may open
    the page (the auditor) sees it masked."""
    return _active(user) and bool(user.is_superuser)


def may_operate(user) -> bool:
    """The operators' commands from the console: replay a projection, rebuild its cache. Superusers only; the
    same commands on the command line are for whoever runs manage.py on a server."""
    return _active(user) and bool(user.is_staff) and bool(user.is_superuser)


def may_reconcile(user) -> bool:
    """Run a reconciliation from the console (it records a verdict and catches the balance projection up):
    finance and the operators. Auditors read every verdict, with who ran it, and change nothing."""
    return _active(user) and bool(user.is_staff) and (FINANCE in roles_of(user) or bool(user.is_superuser))


def may_resend_notifications(user) -> bool:
    """Send a merchant's webhook delivery again from the admin: support, who answers the merchant asking."""
    return SUPPORT in roles_of(user)


def may_use_admin(user) -> bool:
    """Staff status: the admin login, nothing more."""
    return _active(user) and bool(user.is_staff)


def may_manage_users(user) -> bool:
    """Users, groups (roles) and API tokens: superusers only."""
    return may_use_admin(user) and bool(user.is_superuser)


def may_view_admin(user, page: str) -> bool:
    """Whether the user may open an admin page (`app_label.model`). Admin pages of data are read-only for all:
    commands go through the transfer form and the detokenise action, which ask the rules above."""
    if not may_use_admin(user):
        return False
    if page in USER_PAGES:
        return may_manage_users(user)
    if user.is_superuser:
        return True
    if any(page in ROLE_PAGES.get(role, ()) for role in roles_of(user)):
        return True
    app_label, model = page.split(".", 1)
    return user.has_perm(f"{app_label}.view_{model}")


def role_check(name: str) -> str:
    """A role name a command was given; raises ValueError for one the policy does not know."""
    if name not in ROLES:
        raise ValueError(f"unknown role {name!r}: one of {', '.join(ROLES)}")
    return name
