"""The staff audit trail: every kind of staff action is recorded, with who, what, on what and from where; the
records survive a rollback and the database refuses to change them; auditors (not support) browse them, and the
auditor changes nothing anywhere in the admin."""

from __future__ import annotations

import uuid

import pytest
from django.contrib import admin
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import ApiToken
from accounts.services import api_token_issue, customer_register
from fintech.models import StaffAuditRecord
from fintech.staffaudit import staff_audit_record
from tests.staff import staff_login
from vault import services as vault

pytestmark = pytest.mark.django_db

PAN = "4242424242424242"
TRAIL = "/admin/fintech/staffauditrecord/"


def _name(role: str) -> str:
    return f"{role}-{uuid.uuid4().hex[:8]}"


def _staff(client, role: str | None, *, superuser: bool = False):
    vault.role_groups_ensure()
    user = get_user_model().objects.create_user(
        _name(role or "root"), password="x-test-only", is_staff=True, is_superuser=superuser
    )
    if role:
        user.groups.add(Group.objects.get(name=role))
    staff_login(client, user)
    return user


def _records(username: str, action: str) -> list[StaffAuditRecord]:
    return list(StaffAuditRecord.objects.filter(username=username, action=action).order_by("id"))


def test_login_recorded_with_who_and_from_where(client):
    # given a staff user
    username = _name("staff")
    user = get_user_model().objects.create_user(username, password="x-test-only", is_staff=True)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    # when they log in through the admin's form, password and TOTP code
    code = f"{totp(device.bin_key):06d}"
    response = client.post("/admin/login/", {"username": username, "password": "x-test-only", "otp_token": code})
    assert response.status_code == 302, response.content[:300]
    # then the trail has the login, with their id
    (record,) = _records(username, StaffAuditRecord.LOGIN)
    assert record.user_id == get_user_model().objects.get(username=username).pk


def test_failed_admin_login_recorded_with_username_never_password(client):
    # given a staff user
    username = _name("staff")
    get_user_model().objects.create_user(username, password="x-test-only", is_staff=True)
    # when someone tries a wrong password on the admin login form
    client.post(
        "/admin/login/",
        {"username": username, "password": "wrong-secret-77"},
        HTTP_USER_AGENT="curl/8 " + "x" * 300,
        REMOTE_ADDR="203.0.113.9",
    )
    # then the attempt is recorded: who was tried, from where, the agent truncated, no password anywhere
    (record,) = _records(username, StaffAuditRecord.LOGIN_FAILED)
    assert (record.user_id, record.object, record.ip) == (None, "/admin/login/", "203.0.113.9")
    assert record.user_agent.startswith("curl/8 ")
    assert len(record.user_agent) == 200
    assert "wrong-secret-77" not in f"{record.detail} {record.username} {record.object}"


def test_failed_login_with_card_number_as_username_is_masked(client):
    # when a card number is typed as the username
    client.post("/admin/login/", {"username": PAN, "password": "x"})
    # then the trail holds it masked only
    assert not StaffAuditRecord.objects.filter(username__contains=PAN).exists()
    assert StaffAuditRecord.objects.filter(username__endswith="4242", action=StaffAuditRecord.LOGIN_FAILED).exists()


def test_customer_pages_viewed_recorded_and_masked_for_auditor(client):
    # given a customer and an auditor
    customer = customer_register(name="Hanako Sato", email=f"{uuid.uuid4().hex[:8]}@example.com", actor="test")
    auditor = _staff(client, "auditor")
    # when the auditor opens the list and the customer's page
    assert client.get("/admin/accounts/customer/").status_code == 200
    page = client.get(f"/admin/accounts/customer/{customer.pk}/change/")
    # then both views are recorded, and the personal data is masked
    assert page.status_code == 200
    body = page.content.decode()
    assert "Hanako" not in body
    assert "hidden from your role" in body
    objects = [record.object for record in _records(auditor.username, StaffAuditRecord.VIEW)]
    assert objects == ["accounts.customer", f"accounts.customer:{customer.pk}"]


def test_customer_search_recorded_without_the_searched_email(client):
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    customer_register(name="Jiro Ito", email=email, actor="test")
    root = _staff(client, None, superuser=True)
    assert client.get("/admin/accounts/customer/", {"q": email}).status_code == 200
    (record,) = _records(root.username, StaffAuditRecord.VIEW)
    assert record.detail == "q=(search)"


def test_customer_page_shows_pii_to_superuser_and_records_it(client):
    customer = customer_register(name="Taro Yamada", email=f"{uuid.uuid4().hex[:8]}@example.com", actor="test")
    root = _staff(client, None, superuser=True)
    assert "Taro Yamada" in client.get(f"/admin/accounts/customer/{customer.pk}/change/").content.decode()
    assert _records(root.username, StaffAuditRecord.VIEW)[0].object == f"accounts.customer:{customer.pk}"


def test_support_sees_masked_cards_no_customers_and_views_recorded(client):
    # given a card and a support user
    card = vault.card_tokenize(card_number=PAN, exp_month=12, exp_year=2035, merchant_id="m-trail")
    support = _staff(client, "support")
    # when support opens the card's page by the link the list gives (the token quoted, "_" as "_5F"), then it is
    # masked and the view recorded under the card's own token
    body = client.get(reverse("admin:vault_card_change", args=[quote(card.token)])).content.decode()
    assert card.masked in body
    assert PAN not in body
    assert [r.object for r in _records(support.username, StaffAuditRecord.VIEW)] == [f"vault.card:{card.token}"]
    # and the customer pages are closed to support
    assert client.get("/admin/accounts/customer/").status_code == 403


def test_admin_detokenisation_recorded_as_detokenize_and_command(client):
    card = vault.card_tokenize(card_number=PAN, exp_month=12, exp_year=2035, merchant_id="m-trail")
    cde = _staff(client, "cde")
    response = client.post(
        "/admin/vault/card/",
        {"action": "detokenize_selected", "_selected_action": [card.token], "confirm": "1", "purpose": "dispute 9"},
    )
    assert PAN in response.content.decode()
    (record,) = _records(cde.username, StaffAuditRecord.DETOKENIZE)
    assert (record.object, record.detail) == (f"vault.card:{card.token}", "dispute 9")
    assert _records(cde.username, StaffAuditRecord.COMMAND)[0].detail == f"detokenize_selected on {card.token}"


def test_money_form_post_recorded_with_card_numbers_masked(client):
    # given a finance user
    finance = _staff(client, "finance")
    transfer_id = uuid.uuid4()
    # when they submit the transfer form (refused here: no such accounts), a card number in the reference
    client.post(
        "/admin/ledger/account/transfer/",
        {
            "from_account": uuid.uuid4(),
            "to_account": uuid.uuid4(),
            "amount": "5",
            "currency": "JPY",
            "reference": f"card {PAN}",
            "transfer_id": transfer_id,
        },
    )
    # then the submission is recorded, the number masked
    (record,) = _records(finance.username, StaffAuditRecord.MONEY_FORM)
    assert record.object == f"ledger.transfer:{transfer_id}"
    assert "amount=5 currency=JPY" in record.detail
    assert PAN not in record.detail


def test_admin_command_recorded(client):
    # given a superuser and a merchant's API token
    root = _staff(client, None, superuser=True)
    api_token_issue(username=_name("victim"), merchant_id="m-trail")
    token = ApiToken.objects.latest("id")
    # when the revoke action is run on it
    client.post("/admin/accounts/apitoken/", {"action": "revoke_selected", "_selected_action": [token.id]})
    # then the command is recorded with what it was run on
    (record,) = _records(root.username, StaffAuditRecord.COMMAND)
    assert (record.object, record.detail) == ("accounts.apitoken", f"revoke_selected on {token.id}")


def test_record_survives_the_callers_rollback():
    username = _name("rolled-back")
    request = RequestFactory().get("/admin/", REMOTE_ADDR="192.0.2.1")

    @transaction.atomic
    def failing_request() -> None:
        staff_audit_record(request=request, action=StaffAuditRecord.EXPORT, target="x", username=username)
        raise RuntimeError("the request fails")

    # when a request records an action, then fails and rolls back
    with pytest.raises(RuntimeError):
        failing_request()
    # then the record is still there
    assert [r.ip for r in _records(username, StaffAuditRecord.EXPORT)] == ["192.0.2.1"]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE fintech_staffaudit SET username = 'someone else' WHERE username = %s",
        "DELETE FROM fintech_staffaudit WHERE username = %s",
        "TRUNCATE fintech_staffaudit",
    ],
)
def test_database_refuses_changing_records(statement):
    username = _name("immutable")
    staff_audit_record(request=None, action=StaffAuditRecord.LOGIN_FAILED, username=username)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [username] if "%s" in statement else [])
    assert len(_records(username, StaffAuditRecord.LOGIN_FAILED)) == 1


def test_support_cannot_see_the_trail(client):
    _staff(client, "support")
    assert client.get(TRAIL).status_code == 403


def test_auditor_browses_and_filters_the_trail(client):
    # given a recorded failed login
    username = _name("tried")
    staff_audit_record(request=None, action=StaffAuditRecord.LOGIN_FAILED, username=username)
    _staff(client, "auditor")
    # when the auditor filters on the action and searches the username, then the row is listed
    page = client.get(TRAIL, {"action__exact": "login_failed", "q": username})
    assert page.status_code == 200
    assert username in page.content.decode()
    # and a record's page is read-only: no save, no delete
    record = _records(username, StaffAuditRecord.LOGIN_FAILED)[0]
    assert client.post(f"{TRAIL}{record.pk}/change/", {"username": "x"}).status_code == 403
    assert client.post(f"{TRAIL}{record.pk}/delete/", {"post": "yes"}).status_code == 403


def test_auditor_may_change_nothing_in_the_admin():
    # given an auditor
    vault.role_groups_ensure()
    auditor = get_user_model().objects.create_user(_name("auditor"), is_staff=True)
    auditor.groups.add(Group.objects.get(name="auditor"))
    request = RequestFactory().get("/admin/")
    request.user = auditor
    # then no admin page lets them add, change or delete (events, postings, audit rows included), nor offers an
    # action but the card page's none
    for model_admin in admin.site._registry.values():
        label = model_admin.opts.label_lower
        assert not model_admin.has_add_permission(request), label
        assert not model_admin.has_change_permission(request), label
        assert not model_admin.has_delete_permission(request), label
        # an action runs from a page's list, which one it may not open does not show it (django-axes' pages)
        if model_admin.has_view_permission(request):
            assert not model_admin.get_actions(request), label
