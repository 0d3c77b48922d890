"""Staff logins for tests: the admin admits only users verified by a TOTP device (fintech.admin_site)."""

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice


def staff_login(client: Client, user) -> Client:
    """`client.force_login(user)` plus what a right TOTP code leaves in the session (django_otp.login): the user's
    confirmed device, created if it has none."""
    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="test", confirmed=True
    )
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client
