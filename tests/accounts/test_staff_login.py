"""Who may enter the admin: a password and a TOTP code (django-otp), a lockout after repeated failures of one
username from one address (django-axes), sessions that end when idle; and `create_staff`, which makes such a
login. Logins go through the real admin login form."""

import base64
import datetime as dt
import io
import time

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from accounts.services import api_token_issue, staff_user_ensure

pytestmark = pytest.mark.django_db

LOGIN_URL = "/admin/login/?next=/admin/"


def _code(secret: str, *, offset: int = 0) -> str:
    """The TOTP code an authenticator app shows for this base32 secret now (or a wrong one, with an offset)."""
    totp = TOTP(base64.b32decode(secret))
    totp.time = time.time()
    return f"{(totp.token() + offset) % 10**6:06d}"


def _login(client: Client, username: str, password: str, otp_token: str):
    return client.post(LOGIN_URL, {"username": username, "password": password, "otp_token": otp_token})


def test_create_staff_prints_uri_then_password_and_totp_secret_last():
    # when create_staff makes a finance user
    out = io.StringIO()
    call_command("create_staff", "ops-anna", role="finance", stdout=out)
    lines = out.getvalue().splitlines()
    # then the last two lines are the password and the base32 TOTP secret, the otpauth URI above them
    assert lines[-2].startswith("password ")
    assert lines[-1].startswith("totp ")
    password, secret = lines[-2].removeprefix("password "), lines[-1].removeprefix("totp ")
    assert any(line.startswith("otpauth otpauth://totp/") and f"secret={secret}" in line for line in lines[:-2])
    user = get_user_model().objects.get(username="ops-anna")
    assert user.is_staff
    assert not user.is_superuser
    assert user.check_password(password)
    assert list(user.groups.values_list("name", flat=True)) == ["finance"]
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed
    assert base64.b32encode(device.bin_key).decode() == secret


def test_create_staff_again_replaces_password_and_device():
    # given a staff user made by create_staff
    first = staff_user_ensure(username="ops-ben", role="auditor")
    # when it is run again for the same user, as a superuser
    second = staff_user_ensure(username="ops-ben", role="support", superuser=True)
    # then the old password and secret no longer work, and the user holds both roles
    user = get_user_model().objects.get(username="ops-ben")
    assert not user.check_password(first.password)
    assert user.check_password(second.password)
    assert user.is_superuser
    assert sorted(user.groups.values_list("name", flat=True)) == ["auditor", "support"]
    assert [base64.b32encode(d.bin_key).decode() for d in TOTPDevice.objects.filter(user=user)] == [second.totp_secret]


def test_admin_login_with_the_right_totp_code_enters():
    # given a staff user made by create_staff
    staff = staff_user_ensure(username="ops-cleo", role="finance", superuser=True)
    client = Client()
    # when it logs in with its password and the code of its authenticator
    response = _login(client, staff.username, staff.password, _code(staff.totp_secret))
    # then it is in the admin
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_admin_login_page_asks_username_password_and_code_only():
    # given a staff user made by create_staff
    staff = staff_user_ensure(username="ops-lin", role="support")
    # when the login page is opened, then the right code logs in through it
    client = Client()
    pages = [client.get(LOGIN_URL)]
    assert _login(client, staff.username, staff.password, _code(staff.totp_secret)).status_code == 302
    assert client.get("/admin/").status_code == 200
    # and when the page is shown again after a wrong code (where django-otp's own page listed the user's devices
    # and offered a challenge button)
    pages.append(_login(Client(), staff.username, staff.password, _code(staff.totp_secret, offset=1)))
    for page in pages:
        body = page.content.decode()
        # then it asks for the username, the password and the authenticator's code, nothing else
        assert page.status_code == 200
        for name in ("username", "password", "otp_token"):
            assert f'name="{name}"' in body
        assert "Code from your authenticator app" in body
        assert "otp_device" not in body
        assert "otp_challenge" not in body


def test_admin_login_with_a_wrong_totp_code_or_none_is_refused():
    # given a staff user and its right password
    staff = staff_user_ensure(username="ops-dan", role="finance", superuser=True)
    client = Client()
    for otp_token in ("", _code(staff.totp_secret, offset=1)):
        # when the code is missing or wrong
        response = _login(client, staff.username, staff.password, otp_token)
        # then the form is shown again and the admin stays closed
        assert response.status_code == 200
        assert response.context["form"].errors
        assert client.get("/admin/").status_code == 302


def test_admin_login_without_a_device_is_refused_even_with_password():
    # given a staff user with a password but no TOTP device (made some other way than create_staff)
    get_user_model().objects.create_user("ops-eve", password="x-test-only-pw", is_staff=True, is_superuser=True)
    client = Client()
    # when it logs in with its password alone, then it stays out
    assert _login(client, "ops-eve", "x-test-only-pw", "").status_code == 200
    assert client.get("/admin/").status_code == 302


def _fail(client: Client, username: str, times: int) -> list:
    return [_login(client, username, "not-the-password", "000000") for _ in range(times)]


def test_lockout_after_the_failure_limit_answers_the_lockout_page_and_refuses_a_right_login():
    # given a staff user
    staff = staff_user_ensure(username="ops-finn", role="finance", superuser=True)
    client = Client()
    # when its password is wrong AXES_FAILURE_LIMIT times from one address
    responses = _fail(client, staff.username, settings.AXES_FAILURE_LIMIT)
    # then the failures before the limit show the form again, and the last answers the lockout page
    assert [r.status_code for r in responses[:-1]] == [200] * (settings.AXES_FAILURE_LIMIT - 1)
    locked = responses[-1]
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "locked for 15 minutes" in page
    assert "axes_reset_username" in page
    # and the right password and code are refused too, until the cool-off has passed
    assert _login(client, staff.username, staff.password, _code(staff.totp_secret)).status_code == 429
    assert client.get("/admin/").status_code == 302
    AccessAttempt.objects.filter(username=staff.username).update(
        attempt_time=dt.datetime.now(dt.UTC) - settings.AXES_COOLOFF_TIME - dt.timedelta(seconds=1)
    )
    response = _login(client, staff.username, staff.password, _code(staff.totp_secret))
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_wrong_totp_codes_with_the_right_password_lock_out_too():
    # given a staff user whose password is known to someone without its authenticator
    staff = staff_user_ensure(username="ops-kai", role="finance", superuser=True)
    client = Client()
    # when codes are guessed AXES_FAILURE_LIMIT times
    statuses = [
        _login(client, staff.username, staff.password, f"{guess:06d}").status_code
        for guess in range(settings.AXES_FAILURE_LIMIT)
    ]
    # then the guessing is locked out as password guessing is
    assert statuses[-1] == 429
    assert _login(client, staff.username, staff.password, _code(staff.totp_secret)).status_code == 429


def test_lockout_is_per_username_and_address():
    # given a username locked out from one address
    locked = staff_user_ensure(username="ops-gus", role="finance", superuser=True)
    other = staff_user_ensure(username="ops-hal", role="finance", superuser=True)
    _fail(Client(), locked.username, settings.AXES_FAILURE_LIMIT)
    # then another user logs in from that address, and the locked user from another address
    assert _login(Client(), other.username, other.password, _code(other.totp_secret)).status_code == 302
    elsewhere = Client(REMOTE_ADDR="192.0.2.7")
    assert _login(elsewhere, locked.username, locked.password, _code(locked.totp_secret)).status_code == 302


def test_api_token_of_a_locked_out_staff_user_still_works():
    # given a staff user that also holds a merchant's API token, locked out of the admin
    staff = staff_user_ensure(username="ops-ida", role="support")
    token = api_token_issue(username=staff.username, merchant_id="m-locked")
    assert _fail(Client(), staff.username, settings.AXES_FAILURE_LIMIT)[-1].status_code == 429
    # when it calls the API with its token, from the same address
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    # then the API answers as usual
    assert api.get("/api/v1/payments").status_code == 200


def test_staff_session_expires_after_idle_minutes_renewed_by_each_request():
    # given the setting's idle time and a staff user logged in
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    staff = staff_user_ensure(username="ops-jo", role="finance", superuser=True)
    client = Client()
    assert _login(client, staff.username, staff.password, _code(staff.totp_secret)).status_code == 302
    # when it opens a page, then the session cookie is sent again with the full idle time (sliding expiry)
    response = client.get("/admin/")
    assert response.status_code == 200
    assert response.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == 30 * 60
    # and a session idle for longer is gone: the admin sends it to the login page
    session = client.session
    session.set_expiry(-1)
    session.save()
    assert client.get("/admin/").status_code == 302
