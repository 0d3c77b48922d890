"""A cde operator detokenises a card with a purpose in the browser and sees its number; an auditor then finds
that detokenisation in the staff audit trail and, with its purpose, in the vault's own audit."""

from __future__ import annotations

import pytest

from accounts.services import staff_user_ensure
from tests.browser.pages import log_in, open_styled, screenshot, submit_styled
from vault import services as vault

pytestmark = pytest.mark.django_db(transaction=True)

PAN = "4242424242424242"
PURPOSE = "chargeback 4711 evidence"


def test_cde_detokenises_with_a_purpose_and_the_auditor_finds_it(live_server, new_context):
    # given a vaulted card, a cde operator and an auditor, each in a browser session of their own
    card = vault.card_tokenize(card_number=PAN, exp_month=12, exp_year=2035, merchant_id="m-browser")
    cde = staff_user_ensure(username="browser-cde", role="cde")
    auditor = staff_user_ensure(username="browser-aud", role="auditor")
    cde_page, auditor_page = new_context().new_page(), new_context().new_page()
    # when the operator selects the card, runs the detokenise action and states a purpose
    log_in(cde_page, live_server.url, cde)
    open_styled(cde_page, f"{live_server.url}/admin/vault/card/")
    assert PAN not in cde_page.content()
    cde_page.locator(f"input[name=_selected_action][value='{card.token}']").check()
    cde_page.locator("select[name=action]").select_option("detokenize_selected")
    submit_styled(cde_page, cde_page.locator("button[name=index]"))
    assert PAN not in cde_page.content()
    cde_page.get_by_label("Purpose").fill(PURPOSE)
    screenshot(cde_page, "detokenise-purpose")
    submit_styled(cde_page, cde_page.get_by_role("button", name="Detokenise 1 card(s)"))
    # then the number is shown
    assert cde_page.locator("code").filter(has_text=PAN).count() == 1
    screenshot(cde_page, "detokenise-number-shown")

    # when the auditor logs in and opens the staff audit trail, filtered to detokenisations
    log_in(auditor_page, live_server.url, auditor)
    open_styled(auditor_page, f"{live_server.url}/admin/fintech/staffauditrecord/?action__exact=detokenize")
    # then the operator's detokenisation of that card is there, with the purpose
    row = auditor_page.locator("#result_list tbody tr").filter(has_text=f"vault.card:{card.token}")
    assert row.count() == 1
    assert "browser-cde" in row.inner_text()
    assert PURPOSE in row.inner_text()
    assert PAN not in auditor_page.content()
    screenshot(auditor_page, "audit-trail-detokenisation")
    # and the vault's detokenisation audit shows who, the outcome and the purpose
    open_styled(auditor_page, f"{live_server.url}/admin/vault/detokenizationaudit/")
    row = auditor_page.locator("#result_list tbody tr").filter(has_text=card.token)
    assert row.count() == 1
    for text in ("browser-cde", "granted", "admin", PURPOSE):
        assert text in row.inner_text()
    assert PAN not in auditor_page.content()
    screenshot(auditor_page, "vault-detokenisation-audit")
