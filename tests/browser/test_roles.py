"""What a role may not do, tried in a browser: support opening a customer's personal data, anyone editing an
event."""

from __future__ import annotations

import pytest

from accounts.services import customer_register, staff_user_ensure
from fintech.models import Event
from fintech.money import Money
from payments import services as payments
from tests.browser.pages import log_in, open_styled, screenshot
from vault import services as vault

pytestmark = pytest.mark.django_db(transaction=True)

PAN = "4242424242424242"


def test_support_is_refused_customer_pii_and_sees_masked_cards(live_server, page):
    # given a customer, a card and a support user
    customer = customer_register(name="Hanako Browser", email="hanako.browser@example.org", actor="test")
    card = vault.card_tokenize(
        card_number=PAN, exp_month=12, exp_year=2035, merchant_id="m-browser", cardholder_name="Hanako Browser"
    )
    support = staff_user_ensure(username="browser-sue", role="support")
    log_in(page, live_server.url, support)
    # when support looks at the admin's front page, then there is no customer page to follow
    index = page.locator("#content-main")
    assert index.get_by_role("link", name="Cards").count() == 1
    assert index.get_by_role("link", name="Customers").count() == 0
    # and opening the customer pages by their address is refused
    for path in ("/admin/accounts/customer/", f"/admin/accounts/customer/{customer.pk}/change/"):
        response = open_styled(page, f"{live_server.url}{path}")
        assert response.status == 403
        assert page.get_by_role("heading", name="Access refused").is_visible()
        assert "Hanako" not in page.content()
    screenshot(page, "support-customer-refused")
    # while the card list shows the card masked, never its number or holder
    open_styled(page, f"{live_server.url}/admin/vault/card/")
    body = page.content()
    assert card.masked in body
    assert PAN not in body
    assert "Hanako" not in body
    screenshot(page, "support-cards-masked")


def test_editing_an_event_is_refused(live_server, page):
    # given a payment's first event and a superuser, who may open every read-only page
    payment = payments.payment_initiate(
        merchant_id="m-browser",
        amount=Money(4200, "JPY"),
        payment_method_token=vault.card_tokenize(
            card_number=PAN, exp_month=12, exp_year=2035, merchant_id="m-browser"
        ).token,
        actor="test",
    )
    event = Event.objects.get(aggregate_id=payment.id, version=1)
    root = staff_user_ensure(username="browser-root", role="auditor", superuser=True)
    log_in(page, live_server.url, root)
    # when they open the event's page, then it shows the event with nothing to edit and no save button
    url = f"{live_server.url}/admin/fintech/event/{event.event_id}/change/"
    assert open_styled(page, url).status == 200
    assert page.get_by_text(str(payment.id)).count() >= 1
    form = page.locator("#content-main form")
    assert form.locator("input:not([type=hidden]), textarea, select").count() == 0
    assert page.locator("input[type=submit], button[type=submit]").filter(has_text="Save").count() == 0
    assert page.locator("input[name=_save], input[name=_continue], input[name=_addanother]").count() == 0
    screenshot(page, "event-read-only")
    # and a forged submission of the change form, with the session's CSRF token, is refused
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    response = page.request.post(
        url,
        form={"csrfmiddlewaretoken": token, "event_type": "PaymentRefunded", "event_data": "{}", "_save": "Save"},
        headers={"Referer": url},
    )
    # by the admin's permission check, not for want of a CSRF token
    assert response.status == 403
    assert "Access refused" in response.text()
    assert "CSRF" not in response.text()
    # and the row is as it was
    assert Event.objects.get(event_id=event.event_id).event_type == event.event_type
    assert Event.objects.get(event_id=event.event_id).event_data == event.event_data
