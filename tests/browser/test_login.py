"""Staff log in through the admin login form in a browser: password and the code of their authenticator app;
repeated failures lock the username out from that address, with a page saying so."""

from __future__ import annotations

import dataclasses

import pytest
from django.conf import settings

from accounts.services import staff_user_ensure
from tests.browser.pages import log_in, screenshot, totp_code

pytestmark = pytest.mark.django_db(transaction=True)


def test_login_with_a_totp_code_lands_on_the_admin_index(live_server, page):
    # given a staff user made as create_staff makes one
    staff = staff_user_ensure(username="browser-ana", role="finance")
    # when they log in with their password and the code their authenticator shows
    response = log_in(page, live_server.url, staff)
    # then they are on the admin's front page, styled, logged in as themselves
    assert response.status == 200
    assert page.url == f"{live_server.url}/admin/"
    assert "browser-ana" in page.locator("#user-tools").inner_text().lower()
    screenshot(page, "login-admin-index")


def test_login_with_a_wrong_code_shows_the_form_error(live_server, page):
    # given a staff user and their right password
    staff = staff_user_ensure(username="browser-ben", role="support")
    # when the code is wrong
    response = log_in(page, live_server.url, staff, code=totp_code(staff.totp_secret, offset=1))
    # then the login form is shown again with its error, and the admin stays closed
    assert response.status == 200
    assert "/admin/login/" in page.url
    assert page.locator("p.errornote").count() >= 1
    assert page.get_by_label("Code from your authenticator app").is_visible()
    screenshot(page, "login-wrong-code")


def test_lockout_answers_the_locked_page_and_refuses_even_the_right_code(live_server, page):
    # given a staff user
    staff = staff_user_ensure(username="browser-cai", role="finance")
    limit = settings.AXES_FAILURE_LIMIT
    wrong = dataclasses.replace(staff, password="not-the-password")
    # when the password is wrong AXES_FAILURE_LIMIT times from this browser
    statuses = [log_in(page, live_server.url, wrong, code="000000").status for _ in range(limit)]
    # then the failures before the limit show the form again and the last one the lockout page
    assert statuses == [200] * (limit - 1) + [429]
    assert page.get_by_role("heading", name="Login locked").is_visible()
    assert "locked for" in page.locator("p.errornote").inner_text()
    screenshot(page, "login-locked-out")
    # and the right password and code are refused with the same page
    response = log_in(page, live_server.url, staff)
    assert response.status == 429
    assert page.get_by_role("heading", name="Login locked").is_visible()
    assert page.goto(f"{live_server.url}/admin/").url.startswith(f"{live_server.url}/admin/login/")
