"""Where a staff login comes from, behind reverse proxies of our own (ADMIN_NUM_PROXIES) or none: the lockout
counts failures per username and that address, and the staff audit trail records it; an address a client
writes into X-Forwarded-For itself counts for nothing."""

import base64
import time

import pytest
from django.test import Client
from django_otp.oath import TOTP

from accounts.services import staff_user_ensure
from fintech.models import StaffAuditRecord

pytestmark = pytest.mark.django_db

LOGIN_URL = "/admin/login/?next=/admin/"
PROXY = "10.0.0.5"


def _code(secret: str) -> str:
    totp = TOTP(base64.b32decode(secret))
    totp.time = time.time()
    return f"{totp.token():06d}"


def _via_proxy(forwarded_for: str) -> Client:
    return Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded_for)


def _fail(client: Client, username: str, times: int) -> list[int]:
    return [
        client.post(LOGIN_URL, {"username": username, "password": "wrong", "otp_token": "000000"}).status_code
        for _ in range(times)
    ]


def _login(client: Client, staff) -> int:
    data = {"username": staff.username, "password": staff.password, "otp_token": _code(staff.totp_secret)}
    return client.post(LOGIN_URL, data).status_code


def test_behind_one_proxy_the_lockout_is_per_client_not_per_proxy(settings):
    settings.ADMIN_NUM_PROXIES = 1
    staff = staff_user_ensure(username="ops-proxy-a", role="finance", superuser=False)
    # when someone at 198.51.100.7 fails the limit, through our proxy
    statuses = _fail(_via_proxy("198.51.100.7"), staff.username, settings.AXES_FAILURE_LIMIT)
    assert statuses[-1] == 429
    # then the user logs in from 198.51.100.8 through the same proxy
    assert _login(_via_proxy("198.51.100.8"), staff) == 302
    # and the guesser stays locked, even writing another address before the one our proxy appended
    assert _login(_via_proxy("203.0.113.1, 198.51.100.7"), staff) == 429


def test_without_proxies_a_forwarded_for_header_does_not_dodge_the_lockout(settings):
    settings.ADMIN_NUM_PROXIES = 0
    staff = staff_user_ensure(username="ops-proxy-b", role="finance", superuser=False)
    # when the guesser writes a new X-Forwarded-For for every attempt, from one address
    statuses = [
        _fail(Client(REMOTE_ADDR="192.0.2.50", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}"), staff.username, 1)[0]
        for n in range(settings.AXES_FAILURE_LIMIT)
    ]
    # then it is locked out all the same
    assert statuses[-1] == 429


@pytest.mark.parametrize(("proxies", "recorded"), [(0, PROXY), (1, "198.51.100.9"), (2, PROXY)])
def test_the_audit_trail_records_the_address_our_proxies_saw(settings, proxies, recorded):
    settings.ADMIN_NUM_PROXIES = proxies
    staff = staff_user_ensure(username=f"ops-proxy-{proxies}", role="finance", superuser=False)
    # (two proxies configured but one entry: the request did not come through both, REMOTE_ADDR it is)
    assert _login(_via_proxy("198.51.100.9"), staff) == 302
    record = StaffAuditRecord.objects.filter(username=staff.username, action="login").get()
    assert record.ip == recorded
