"""The ledger in the admin: read-only pages for every ledger model, and the finance role's transfer form, which
goes through the same service as the API."""

import importlib
import re
import uuid

import pytest
from django.apps import apps
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import Client

from fintech import eventstore
from fintech.money import Money
from ledger import bookings, services
from ledger.models import Account, JournalEntry, Posting, SettlementBatch, Transfer
from ledger.settlement import settlement_run
from tests.ledger.conftest import ACTOR
from tests.ledger.helpers import settlement_day_of_its_own
from tests.staff import staff_login

pytestmark = pytest.mark.django_db(transaction=True)

TRANSFER_URL = "/admin/ledger/account/transfer/"
VISA_PAN = "4242424242424242"
finance_role = importlib.import_module("accounts.migrations.0005_finance_role")
ledger_moved_out = importlib.import_module("accounts.migrations.0009_ledger_moved_out")


def _login(username: str, *, superuser: bool = False, groups: tuple[str, ...] = ()) -> tuple[Client, object]:
    users = get_user_model().objects
    if superuser:
        user = users.create_superuser(username, password="x-test-only")
    else:
        user = users.create_user(username, password="x-test-only", is_staff=True)
    for name in groups:
        user.groups.add(Group.objects.get(name=name))
    client = Client()
    staff_login(client, user)
    return client, user


@pytest.fixture
def roles(transactional_db):
    """The finance role as its migrations make it: a transactional test's flush removes the migration's groups."""
    finance_role.finance_role_grant(apps, None)
    ledger_moved_out.content_types_to_ledger(apps, None)
    Group.objects.get_or_create(name="support")


@pytest.fixture
def superuser(roles):
    return _login("root", superuser=True)


@pytest.fixture
def finance(roles):
    return _login("finance-op", groups=("finance",))


@pytest.fixture
def support(roles):
    """Staff outside finance, who may still view the ledger: only the transfer form is closed to them."""
    client, user = _login("support-op", groups=("support",))
    user.user_permissions.add(*Group.objects.get(name="finance").permissions.all())
    return client, user


@pytest.fixture
def ledger_rows(customer_account):
    """One row of every ledger model the admin shows, made through the services."""
    alice, bob = customer_account(funded=5_000), customer_account()
    transfer = services.transfer_create(
        from_account=alice.id, to_account=bob.id, amount=Money(1_200, "JPY"), reference="admin-rows", actor=ACTOR
    )
    hold = services.hold_place(account_id=alice.id, amount=Money(300, "JPY"), reference="admin-hold", actor=ACTOR)
    batch, merchant_id = _settled_batch()
    return {
        "account": alice.id,
        "journalentry": transfer.id,
        "posting": Posting.objects.filter(entry_id=transfer.id).order_by("id").first().id,
        "transfer": transfer.id,
        "hold": hold.id,
        "settlementbatch": batch.id,
        "merchant_id": merchant_id,
    }


def _settled_batch() -> tuple[SettlementBatch, str]:
    """A batch with one line: a new merchant's capture, booked as the bookings process manager books a payment's
    capture event, then settled. The ledger is never emptied, so the capture is due on a day of its own, long
    before any real one, and the batch of that day settles it alone."""
    merchant_id = f"m-admin-{uuid.uuid4().hex[:8]}"
    due = settlement_day_of_its_own()
    with transaction.atomic():
        bookings.payment_capture_book(
            event_id=uuid.uuid4(),
            payment_id=uuid.uuid4(),
            merchant_id=merchant_id,
            amount=Money(5_000, "JPY"),
            settlement_date=due,
            fee_bps=0,
        )
    result = settlement_run(settlement_date=due, actor=ACTOR)
    assert result.created
    return result.batch, merchant_id


def _balances(*accounts) -> list[tuple[int, int]]:
    rows = {row.id: row for row in Account.objects.filter(id__in=[a.id for a in accounts])}
    return [(rows[a.id].available, rows[a.id].pending) for a in accounts]


def _transfer(
    client: Client, source, destination, amount: str, currency: str = "JPY", reference: str = "admin", form_id=None
):
    data = {
        "from_account": str(source.id),
        "to_account": str(destination.id),
        "amount": amount,
        "currency": currency,
        "reference": reference,
        "transfer_id": str(form_id or uuid.uuid4()),
    }
    return client.post(TRANSFER_URL, data)


# --- read-only pages ------------------------------------------------------------------------------------------
LEDGER_MODELS = ["account", "journalentry", "posting", "transfer", "hold", "settlementbatch"]


@pytest.mark.parametrize("model", LEDGER_MODELS)
def test_ledger_pages_render_read_only_for_superuser(superuser, ledger_rows, model):
    client, _ = superuser
    pk = ledger_rows[model]
    # when the superuser opens the list and the row's page
    listing = client.get(f"/admin/ledger/{model}/")
    detail = client.get(f"/admin/ledger/{model}/{pk}/change/")
    # then both render, without an add button, a save button or a delete link
    assert (listing.status_code, detail.status_code) == (200, 200)
    assert f"/admin/ledger/{model}/add/" not in listing.content.decode()
    body = detail.content.decode()
    assert 'name="_save"' not in body
    assert f"/admin/ledger/{model}/{pk}/delete/" not in body
    # and adding or deleting is refused outright
    assert client.get(f"/admin/ledger/{model}/add/").status_code == 403
    assert client.post(f"/admin/ledger/{model}/{pk}/delete/", {"post": "yes"}).status_code == 403


@pytest.mark.parametrize("model", LEDGER_MODELS)
def test_ledger_pages_render_for_finance_through_the_group(finance, ledger_rows, model):
    # given a staff user whose only permissions come from the finance group
    client, _ = finance
    # when they open the list and the row's page, then both render
    assert client.get(f"/admin/ledger/{model}/").status_code == 200
    assert client.get(f"/admin/ledger/{model}/{ledger_rows[model]}/change/").status_code == 200


def test_ledger_lists_search_by_id_finds_the_row(superuser, ledger_rows):
    client, _ = superuser
    # given the rows of every model, when each list is searched by the row's id (a posting: by its account)
    searches = {
        "account": ledger_rows["account"],
        "journalentry": ledger_rows["journalentry"],
        "posting": ledger_rows["account"],
        "transfer": ledger_rows["transfer"],
        "hold": ledger_rows["hold"],
        "settlementbatch": ledger_rows["settlementbatch"],
    }
    for model, term in searches.items():
        body = client.get(f"/admin/ledger/{model}/", {"q": str(term)}).content.decode()
        # then the row is listed
        assert f"/admin/ledger/{model}/{ledger_rows[model]}/change/" in body, model
    # and a term that is no id nor owner finds nothing
    assert client.get("/admin/ledger/account/", {"q": "no-such-owner"}).context["cl"].result_count == 0


def test_account_search_by_owner_id_finds_its_accounts(superuser, customer_account, merchant_account):
    client, _ = superuser
    # given a customer's account and a merchant's
    accounts = (customer_account(), merchant_account())
    for account, term in zip(accounts, (accounts[0].owner_id.upper(), accounts[1].owner_id), strict=True):
        # when staff search the accounts by the owner's id, then its account is listed
        body = client.get("/admin/ledger/account/", {"q": term}).content.decode()
        assert f"/admin/ledger/account/{account.id}/change/" in body


def test_account_detail_shows_ledger_balances_in_currency_decimals_and_latest_postings(superuser, customer_account):
    client, _ = superuser
    # given a USD account holding 10.50 and a JPY account holding 1,000
    dollars, yen = customer_account(currency="USD", funded=1_050), customer_account(funded=1_000)
    # when staff open them
    dollars_page = client.get(f"/admin/ledger/account/{dollars.id}/change/").content.decode()
    yen_page = client.get(f"/admin/ledger/account/{yen.id}/change/").content.decode()
    # then the balances are the account row's, with the currency's decimals
    assert "10.50 USD" in dollars_page
    assert "0.00 USD" in dollars_page
    assert "1000 JPY" in yen_page
    # and the latest postings link to their journal entries
    deposit = Posting.objects.get(account_id=dollars.id).entry_id
    assert f"/admin/ledger/journalentry/{deposit}/change/" in dollars_page


def test_journal_entry_detail_lists_its_postings_read_only(superuser, ledger_rows):
    client, _ = superuser
    # when staff open the transfer's journal entry
    body = client.get(f"/admin/ledger/journalentry/{ledger_rows['journalentry']}/change/").content.decode()
    # then each of its postings is shown, with no field to edit
    for posting in Posting.objects.filter(entry_id=ledger_rows["journalentry"]):
        assert re.search(rf'<td class="field-amount">\s*<p>{posting.amount}</p>', body), posting
    assert 'name="postings-0-amount"' not in body


def test_settlement_batch_detail_lists_its_lines_read_only(superuser, ledger_rows):
    client, _ = superuser
    # when staff open the settlement batch
    body = client.get(f"/admin/ledger/settlementbatch/{ledger_rows['settlementbatch']}/change/").content.decode()
    # then the merchant's line is shown, with no field to edit
    assert ledger_rows["merchant_id"] in body
    assert 'name="lines-0-amount"' not in body


# --- the transfer form ----------------------------------------------------------------------------------------
def test_transfer_form_by_finance_moves_balances_and_audits(finance, customer_account):
    client, user = finance
    # given a funded customer and another one
    alice, bob = customer_account(funded=5_000), customer_account()
    # when finance transfer 1,000 yen through the form
    response = _transfer(client, alice, bob, "1000", reference="refund goodwill")
    # then the balances moved, as the account rows say
    assert _balances(alice, bob) == [(4_000, 0), (1_000, 0)]
    transfer = Transfer.objects.get(from_account_id=alice.id)
    assert (transfer.amount, transfer.currency, transfer.reference) == (1_000, "JPY", "refund goodwill")
    # and the admin log holds the transfer, under the finance user
    entry = LogEntry.objects.get(object_id=str(transfer.id))
    assert (entry.user_id, entry.action_flag) == (user.pk, ADDITION)
    assert entry.content_type == ContentType.objects.get_for_model(Transfer)
    # and the transfer, its entry and its events name the admin user as the actor
    actor = f"admin:{user.pk}"
    assert transfer.actor == JournalEntry.objects.get(id=transfer.id).actor == actor
    events = [*eventstore.load(transfer.id), *eventstore.load(alice.id)[-1:], *eventstore.load(bob.id)[-1:]]
    assert [e.event_type for e in events] == ["TransferCompleted", "BalanceChanged", "BalanceChanged"]
    assert {e.metadata["actor"] for e in events} == {actor}
    # and the user lands on the transfer with a message naming it
    assert response.status_code == 302
    assert response["Location"] == f"/admin/ledger/transfer/{transfer.id}/change/"
    assert f"Transfer {transfer.id} completed: 1000 JPY." in client.get(response["Location"]).content.decode()


def test_transfer_form_reads_amount_in_currency_decimals(finance, customer_account):
    client, _ = finance
    # given funded USD accounts
    source, destination = customer_account(currency="USD", funded=5_000), customer_account(currency="USD")
    # when finance transfer "10.50" dollars
    response = _transfer(client, source, destination, "10.50", currency="USD")
    # then 1,050 cents moved
    assert response.status_code == 302
    assert _balances(source, destination) == [(3_950, 0), (1_050, 0)]


@pytest.mark.parametrize(
    ("amount", "currency", "error"),
    [
        ("1e3", "JPY", "Enter a positive decimal amount"),
        ("", "JPY", "This field is required."),
        ("-5", "JPY", "Enter a positive decimal amount"),
        ("0", "JPY", "The amount must be positive."),
        ("0.00", "USD", "The amount must be positive."),
        ("1,000", "JPY", "Enter a positive decimal amount"),
        ("NaN", "JPY", "Enter a positive decimal amount"),
        ("10.5", "JPY", "JPY has 0 decimal places"),
        ("10.505", "USD", "USD has 2 decimal places"),
        ("100", "", "This field is required."),
        ("100", "XYZ", "Select a valid choice."),
    ],
)
def test_transfer_form_bad_amount_is_a_form_error(finance, customer_account, amount, currency, error):
    client, _ = finance
    accounts_currency = "USD" if currency == "USD" else "JPY"
    source, destination = (
        customer_account(currency=accounts_currency, funded=5_000),
        customer_account(accounts_currency),
    )
    # when finance submit an amount that is no positive decimal in the currency
    response = _transfer(client, source, destination, amount, currency=currency)
    # then the form shows why, and nothing moved
    assert response.status_code == 200
    assert error in response.content.decode()
    assert _balances(source, destination) == [(5_000, 0), (0, 0)]
    assert not Transfer.objects.filter(from_account_id=source.id).exists()


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("insufficient", "insufficient_funds"),
        ("other currency", "currency_mismatch"),
        ("unknown account", "account_not_found"),
        ("same account", "invalid_request"),
    ],
)
def test_transfer_form_refused_by_the_ledger_shows_the_error_and_writes_nothing(finance, customer_account, case, code):
    client, _ = finance
    # given a customer with 1,000 yen
    source, destination = customer_account(funded=1_000), customer_account()
    request = {
        "insufficient": (destination, "1001", "JPY"),
        "other currency": (customer_account(currency="USD"), "10", "JPY"),
        "unknown account": (Account(id=uuid.uuid4()), "10", "JPY"),
        "same account": (source, "10", "JPY"),
    }[case]
    entries = JournalEntry.objects.count()
    # when finance submit a transfer the ledger refuses
    response = _transfer(client, source, request[0], request[1], currency=request[2])
    # then the form shows the domain error's message and code, not a stack trace
    body = response.content.decode()
    assert response.status_code == 200
    assert f"({code})" in body
    assert 'class="errornote"' in body
    assert "Traceback" not in body
    # and nothing is written: no balance change, no entry, no transfer, no log entry
    assert _balances(source, destination) == [(1_000, 0), (0, 0)]
    assert JournalEntry.objects.count() == entries
    assert not Transfer.objects.filter(from_account_id=source.id).exists()
    assert not LogEntry.objects.exists()


def test_transfer_form_for_staff_outside_finance_is_forbidden(support, customer_account):
    client, _ = support
    source, destination = customer_account(funded=1_000), customer_account()
    # when staff outside finance open or post the form, then both are refused
    assert client.get(TRANSFER_URL).status_code == 403
    assert _transfer(client, source, destination, "100").status_code == 403
    # and nothing moved, while the account list they may view offers no transfer
    assert _balances(source, destination) == [(1_000, 0), (0, 0)]
    listing = client.get("/admin/ledger/account/")
    assert listing.status_code == 200
    assert TRANSFER_URL not in listing.content.decode()


def test_transfer_form_is_offered_to_finance_and_superusers_in_finance(finance, roles):
    superuser_in_finance = _login("root-finance", superuser=True, groups=("finance",))
    # when finance, superusers among them, open the account list, then it links the form, which renders
    for client, _ in (finance, superuser_in_finance):
        assert TRANSFER_URL in client.get("/admin/ledger/account/").content.decode()
        form = client.get(TRANSFER_URL)
        assert form.status_code == 200
        assert 'name="amount"' in form.content.decode()


def test_transfer_form_for_superuser_outside_finance_is_forbidden(superuser, customer_account):
    client, _ = superuser
    source, destination = customer_account(funded=1_000), customer_account()
    # when a superuser outside finance opens or posts the form, then both are refused: no role is implied
    assert client.get(TRANSFER_URL).status_code == 403
    assert _transfer(client, source, destination, "100").status_code == 403
    assert _balances(source, destination) == [(1_000, 0), (0, 0)]
    assert TRANSFER_URL not in client.get("/admin/ledger/account/").content.decode()


def test_transfer_form_for_anonymous_redirects_to_login(roles):
    # when someone not logged in opens the form, then they are sent to the login page
    response = Client().get(TRANSFER_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_transfer_form_submitted_twice_moves_the_money_once(finance, customer_account):
    client, _ = finance
    alice, bob = customer_account(funded=5_000), customer_account()
    # given the form as shown once (its hidden transfer id chosen then)
    form_id = uuid.uuid4()
    assert 'value="' in client.get(TRANSFER_URL).content.decode()
    # when it is submitted twice (a double click)
    first = _transfer(client, alice, bob, "700", form_id=form_id)
    second = _transfer(client, alice, bob, "700", form_id=form_id)
    # then the money moved once and both submissions land on the same transfer
    assert _balances(alice, bob) == [(4_300, 0), (700, 0)]
    assert first["Location"] == second["Location"] == f"/admin/ledger/transfer/{form_id}/change/"
    assert LogEntry.objects.filter(object_id=str(form_id)).count() == 1


@pytest.mark.parametrize(
    "reference",
    ["card 4242.4242.4242.4242", "4242  4242 4242  4242", "4242-4242 4242.4242", "4242/4242/4242/4242", VISA_PAN],
)
def test_transfer_form_reference_with_card_number_refused_and_not_shown(finance, customer_account, reference):
    client, _ = finance
    alice, bob = customer_account(funded=5_000), customer_account()
    # when finance type a card number, separated any way, into the transfer's reference
    response = _transfer(client, alice, bob, "100", reference=reference)
    # then the form refuses it, moves nothing, and the page shown again does not repeat the number
    body = response.content.decode()
    assert response.status_code == 200
    assert "must not contain a card number" in body
    assert _balances(alice, bob) == [(5_000, 0), (0, 0)]
    assert not Transfer.objects.filter(from_account_id=alice.id).exists()
    assert "4242" * 2 not in re.sub(r"[^0-9*]", "", body)
