"""What the browser tests do with a page: open it and check it is styled, log in as a real staff user (password
and a TOTP code, as an authenticator app shows it), save a screenshot."""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path

from django.conf import settings
from django_otp.oath import TOTP
from playwright.sync_api import Page, Response

from accounts.services import StaffCredentials

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "browser"
ADMIN_STYLESHEET = re.compile(r"/static/admin/css/base(\.[0-9a-f]+)?\.css$")

# The admin stylesheet as this document loaded it: its status (Resource Timing, cached loads included) and
# whether the browser parsed it into rules; a 404 or a wrong content type leaves no rules.
_STYLESHEET_STATE = """() => {
  const entries = performance.getEntriesByType("resource").map(e => [e.name, e.responseStatus]);
  const sheets = [...document.styleSheets].filter(s => s.href).map(s => {
    let rules = 0;
    try { rules = s.cssRules.length; } catch (e) { rules = -1; }
    return [s.href, rules];
  });
  return {entries, sheets, bodyMargin: getComputedStyle(document.body).marginTop};
}"""


def assert_styled(page: Page) -> None:
    """The page's document loaded the admin stylesheet with status 200 and the browser applied it."""
    state = page.evaluate(_STYLESHEET_STATE)
    statuses = [status for url, status in state["entries"] if ADMIN_STYLESHEET.search(url.split("?")[0])]
    assert statuses == [200], f"{page.url}: admin stylesheet loads {statuses} in {state['entries']}"
    rules = [count for url, count in state["sheets"] if ADMIN_STYLESHEET.search(url.split("?")[0])]
    assert len(rules) == 1, f"{page.url}: admin stylesheet not in {state['sheets']}"
    assert rules[0] > 0, f"{page.url}: admin stylesheet has no rules: {state['sheets']}"
    # base.css sets `body { margin: 0 }`; a browser's own default is 8px.
    assert state["bodyMargin"] == "0px", f"{page.url}: body margin {state['bodyMargin']}, base.css not applied"


def open_styled(page: Page, url: str) -> Response:
    """Open a URL, wait for it to load, check it is styled, and return its response."""
    response = page.goto(url)
    assert response is not None
    page.wait_for_load_state("load")
    assert_styled(page)
    return response


def submit_styled(page: Page, submit) -> Response:
    """Click a submit button (a locator) and wait for the page it leads to, checked styled."""
    with page.expect_navigation() as navigation:
        submit.click()
    page.wait_for_load_state("load")
    assert_styled(page)
    response = navigation.value
    assert response is not None
    return response


def screenshot(page: Page, name: str) -> Path:
    """Save the whole page as test-artifacts/browser/<name>.png (a test artefact, git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def totp_code(secret: str, *, offset: int = 0) -> str:
    """The code an authenticator app shows now for this base32 secret (with an offset: a wrong one)."""
    totp = TOTP(base64.b32decode(secret))
    totp.time = time.time()
    return f"{(totp.token() + offset) % 10**6:06d}"


def log_in(page: Page, base_url: str, staff: StaffCredentials, *, code: str | None = None) -> Response:
    """Fill in the admin login form as a person would and submit it; the page after it is checked styled.

    A TOTP code is accepted once per 30-second step (django-otp keeps the last step used), and a wrong one
    throttles the device for a second: each test logs a device in once, with a fresh code."""
    open_styled(page, f"{base_url}/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(staff.username)
    page.get_by_label("Password").fill(staff.password)
    page.get_by_label("Code from your authenticator app").fill(code or totp_code(staff.totp_secret))
    return submit_styled(page, page.get_by_role("button", name="Log in"))
