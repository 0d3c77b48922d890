"""Who may do what, as tables: every API operation and every admin page, by role. The tests in test_matrix.py
assert each cell against the running code; `python -m tests.access.matrix` prints them as the markdown of the
README's "Who may do what".

API cells are HTTP statuses of a valid request (a 2xx is "allowed"). Admin cells are the status of the page
(302: sent to the login page), and for the commands of the admin "ok" when the command was carried out.
"""

from __future__ import annotations

ROLES = {
    "anonymous": "no credentials",
    "merchant": "a user of merchant M (API token)",
    "other merchant": "a user of another merchant",
    "support": "staff in the support group",
    "finance": "staff in the finance group",
    "cde": "staff in the cde group (vault.detokenize)",
    "auditor": "staff in the auditor group",
    "superuser": "a superuser in no group",
    "superuser+finance": "a superuser in the finance group",
}
API_ROLES = tuple(ROLES)
ADMIN_ROLES = tuple(role for role in ROLES if role != "other merchant")


def _row(*cells: object) -> dict[str, object]:
    """anonymous, merchant, other merchant, support, finance, cde, auditor, superuser, superuser+finance."""
    return dict(zip(API_ROLES, cells, strict=True))


# Operations on merchant M's objects (M's payments, M's card, M's payable account, customer accounts).
API = {
    "POST /payments": _row(401, 201, 400, 403, 403, 403, 403, 403, 403),
    "GET /payments": _row(401, 200, 200, 403, 403, 403, 403, 403, 403),
    "GET /payments/{id}": _row(401, 200, 404, 403, 403, 403, 403, 403, 403),
    "POST /payments/{id}/authorize": _row(401, 200, 404, 403, 403, 403, 403, 403, 403),
    "POST /payments/{id}/capture": _row(401, 200, 404, 403, 403, 403, 403, 403, 403),
    "POST /payments/{id}/refunds": _row(401, 200, 404, 403, 403, 403, 403, 403, 403),
    "POST /payments/{id}/cancel": _row(401, 200, 404, 403, 403, 403, 403, 403, 403),
    "GET /payments/{id}/events": _row(401, 200, 404, 403, 403, 403, 403, 403, 403),
    "POST /vault/tokens": _row(401, 201, 201, 403, 403, 403, 403, 403, 403),
    "POST /vault/tokens/{token}/detokenize": _row(401, 403, 403, 403, 403, 200, 403, 403, 403),
    "POST /accounts": _row(401, 403, 403, 403, 201, 403, 403, 403, 201),
    "POST /accounts/{id}/deposits": _row(401, 403, 403, 403, 201, 403, 403, 403, 201),
    "POST /accounts/{id}/holds": _row(401, 403, 403, 403, 201, 403, 403, 403, 201),
    "POST /holds/{id}/release": _row(401, 403, 403, 403, 200, 403, 403, 403, 200),
    "POST /holds/{id}/settle": _row(401, 403, 403, 403, 200, 403, 403, 403, 200),
    "POST /transfers": _row(401, 403, 403, 403, 201, 403, 403, 403, 201),
    "GET /accounts/{id}/balance (M's account)": _row(401, 200, 404, 404, 200, 404, 404, 404, 200),
    "GET /accounts/{id}/entries (M's account)": _row(401, 200, 404, 404, 200, 404, 404, 404, 200),
    "GET /accounts/{id}/balance (a customer's)": _row(401, 404, 404, 404, 200, 404, 404, 404, 200),
    "POST /webhook-endpoints": _row(401, 201, 201, 403, 403, 403, 403, 403, 403),
    "GET /webhook-endpoints": _row(401, 200, 200, 403, 403, 403, 403, 403, 403),
    "GET /webhook-endpoints/{id}": _row(401, 200, 404, 403, 403, 403, 403, 403, 403),
    "DELETE /webhook-endpoints/{id}": _row(401, 204, 404, 403, 403, 403, 403, 403, 403),
    "GET /webhook-endpoints/{id}/deliveries": _row(401, 200, 404, 403, 403, 403, 403, 403, 403),
    "POST /webhook-deliveries/{id}/retry": _row(401, 202, 404, 403, 403, 403, 403, 403, 403),
    "GET /notifications": _row(401, 200, 200, 403, 403, 403, 403, 403, 403),
    "GET /api/schema/": _row(200, 200, 200, 200, 200, 200, 200, 200, 200),
}


def _admin_row(*cells: object) -> dict[str, object]:
    """anonymous, merchant, support, finance, cde, auditor, superuser, superuser+finance."""
    return dict(zip(ADMIN_ROLES, cells, strict=True))


_LOGIN = 302
LEDGER = _admin_row(_LOGIN, _LOGIN, 403, 200, 403, 200, 200, 200)
SUPERUSERS = _admin_row(_LOGIN, _LOGIN, 403, 403, 403, 403, 200, 200)
# Pages of data and audit trails that no working role needs: the auditor and the superusers read them.
AUDITED = _admin_row(_LOGIN, _LOGIN, 403, 403, 403, 200, 200, 200)
READ_ONLY_ADD = _admin_row(_LOGIN, _LOGIN, 403, 403, 403, 403, 403, 403)
# Payments and their timelines: support answers merchants from them, finance follows money through them.
PAYMENTS = _admin_row(_LOGIN, _LOGIN, 200, 200, 403, 200, 200, 200)
OPERATORS = _admin_row(_LOGIN, _LOGIN, 403, 403, 403, 403, "ok", "ok")

# Each registered model's list page (its "add" page is 403 to every staff user but for users, groups and TOTP
# devices), and the admin's commands.
ADMIN = {
    "admin index": _admin_row(_LOGIN, _LOGIN, 200, 200, 200, 200, 200, 200),
    "auth.user": SUPERUSERS,
    "auth.user add": SUPERUSERS,
    "auth.group": SUPERUSERS,
    "auth.group add": SUPERUSERS,
    "accounts.apitoken": SUPERUSERS,
    "accounts.customer": AUDITED,
    "ledger.account": LEDGER,
    "ledger.journalentry": LEDGER,
    "ledger.posting": LEDGER,
    "ledger.transfer": LEDGER,
    "ledger.hold": LEDGER,
    "ledger.settlementbatch": LEDGER,
    "ledger.bookingalert": LEDGER,
    "ledger.reconciliationrun": LEDGER,
    "vault.card": _admin_row(_LOGIN, _LOGIN, 200, 403, 200, 200, 200, 200),
    "vault.detokenizationaudit": AUDITED,
    "payments.paymentstream": PAYMENTS,
    "payments.authorizationattempt": AUDITED,
    "fintech.event": AUDITED,
    "fintech.staffauditrecord": AUDITED,
    "projections.projectionstate": AUDITED,
    "projections.paymentview": PAYMENTS,
    "projections.merchantdailysummary": AUDITED,
    "console.operation": AUDITED,
    # The data lifecycle (archive/): retention policies, their history, archive objects and purge records.
    "archive.retentionpolicy": AUDITED,
    "archive.retentionchange": AUDITED,
    "archive.purgerecord": AUDITED,
    "archive.archiveobject": AUDITED,
    # Merchants' webhook endpoints (notifications/): support looks when a merchant heard of nothing.
    "notifications.webhookendpoint": _admin_row(_LOGIN, _LOGIN, 200, 403, 403, 200, 200, 200),
    "notifications.webhookdelivery": _admin_row(_LOGIN, _LOGIN, 200, 403, 403, 200, 200, 200),
    # Staff login security: lockout records (deleting one unlocks a login) and TOTP devices.
    "axes.accessattempt": SUPERUSERS,
    "axes.accessfailurelog": SUPERUSERS,
    "axes.accesslog": SUPERUSERS,
    "otp_totp.totpdevice": SUPERUSERS,
    "otp_totp.totpdevice add": SUPERUSERS,
    "add page of every other model": READ_ONLY_ADD,
    "transfer form (GET)": _admin_row(_LOGIN, _LOGIN, 403, 200, 403, 403, 403, 200),
    "transfer form: move money (POST)": _admin_row(_LOGIN, _LOGIN, 403, "ok", 403, 403, 403, "ok"),
    "card: detokenise action": _admin_row(_LOGIN, _LOGIN, "refused", 403, "ok", "refused", "refused", "refused"),
    "API token: revoke action": _admin_row(_LOGIN, _LOGIN, 403, 403, 403, 403, "ok", "ok"),
    "webhook delivery: send again action": _admin_row(_LOGIN, _LOGIN, "ok", 403, 403, "refused", "refused", "refused"),
    # The operations console (console/): dashboard panels follow the pages above.
    "console: payment search": PAYMENTS,
    "console: payment timeline": PAYMENTS,
    "console: projections page": AUDITED,
    "console: replay a projection (POST)": OPERATORS,
    "console: rebuild a projection's cache (POST)": OPERATORS,
    "console: reconciliation page": LEDGER,
    "console: run a reconciliation (POST)": _admin_row(_LOGIN, _LOGIN, 403, "ok", 403, 403, "ok", "ok"),
}


def _markdown(title: str, roles: tuple[str, ...], table: dict[str, dict[str, object]]) -> str:
    lines = [f"| {title} | " + " | ".join(roles) + " |", "|---|" + "---|" * len(roles)]
    lines += [f"| {name} | " + " | ".join(str(row[role]) for role in roles) + " |" for name, row in table.items()]
    return "\n".join(lines)


def markdown() -> str:
    return _markdown("API (`/api/v1`)", API_ROLES, API) + "\n\n" + _markdown("admin (`/admin/`)", ADMIN_ROLES, ADMIN)


if __name__ == "__main__":
    print(markdown())  # noqa: T201 - the command's output
