import pytest
from django.contrib.admin.utils import quote
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from tests.staff import staff_login
from vault import services
from vault.models import Card, DetokenizationAudit

pytestmark = pytest.mark.django_db

PAN = "4242424242424242"


def _card_url(view: str, token: str) -> str:
    return reverse(f"admin:vault_card_{view}", args=[quote(token)])


@pytest.fixture
def card(monkeypatch):
    # Every token here starts "tok_0A", which the admin reads as an escaped newline unless the URL quotes it
    # (admin.utils.unquote). One random token in fifteen starts like that, and a test that wrote the URL by hand
    # then found the index's redirect in place of the card's page.
    token_new = services._token_new
    monkeypatch.setattr(services, "_token_new", lambda: "tok_0A" + token_new()[6:])
    return services.card_tokenize(
        card_number=PAN, exp_month=12, exp_year=2035, merchant_id="m-admin", cardholder_name="Hanako Sato"
    )


def _staff(client, username: str, *groups: str):
    services.role_groups_ensure()
    user = get_user_model().objects.create_user(username, password="x-test-only", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_card"), Permission.objects.get(codename="view_detokenizationaudit")
    )
    for name in groups:
        user.groups.add(Group.objects.get(name=name))
    staff_login(client, user)
    return client


def test_card_admin_pages_show_masked_data_only(client, card):
    staff = _staff(client, "cde-op", "cde")
    for url in ("/admin/vault/card/", _card_url("change", card.token), f"/admin/vault/card/?q={card.token}"):
        body = staff.get(url).content.decode()
        assert card.masked in body
        assert PAN not in body
        assert "Hanako" not in body
    # the list links each card to the page this test opened
    assert _card_url("change", card.token) in staff.get("/admin/vault/card/").content.decode()


def test_detokenize_action_for_cde_asks_purpose_then_shows_number_and_audits(client, card):
    staff = _staff(client, "cde-op", "cde")
    # when the action is chosen, a purpose is asked first and nothing is revealed or audited yet
    response = staff.post("/admin/vault/card/", {"action": "detokenize_selected", "_selected_action": [card.token]})
    assert response.status_code == 200
    assert 'name="purpose"' in response.content.decode()
    assert PAN not in response.content.decode()
    assert not DetokenizationAudit.objects.filter(token=card.token).exists()
    # when confirmed with a purpose, the number is shown, uncached, and the attempt is audited
    response = staff.post(
        "/admin/vault/card/",
        {"action": "detokenize_selected", "_selected_action": [card.token], "confirm": "yes", "purpose": "dispute 7"},
    )
    assert PAN in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    audit = DetokenizationAudit.objects.get(token=card.token)
    assert (audit.actor, audit.purpose, audit.outcome, audit.channel) == ("cde-op", "dispute 7", "granted", "admin")


def test_detokenize_action_hidden_and_refused_for_support(client, card):
    staff = _staff(client, "support-op", "support")
    assert "detokenize_selected" not in staff.get("/admin/vault/card/").content.decode()
    response = staff.post(
        "/admin/vault/card/",
        {"action": "detokenize_selected", "_selected_action": [card.token], "confirm": "yes", "purpose": "curious"},
    )
    assert PAN not in response.content.decode()
    assert not DetokenizationAudit.objects.filter(token=card.token, outcome="granted").exists()


def test_vault_admin_is_read_only_for_superuser(admin_client, card):
    assert admin_client.get("/admin/vault/card/add/").status_code == 403
    assert admin_client.post(_card_url("delete", card.token), {"post": "yes"}).status_code == 403
    assert admin_client.get("/admin/vault/detokenizationaudit/add/").status_code == 403
    assert Card.objects.filter(token=card.token).exists()
