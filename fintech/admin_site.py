"""The admin behind two factors: every staff login needs a password and a TOTP code (django-otp).

The apps register their pages on the default site (`@admin.register`); fintech.apps.StaffAdminConfig makes that
default site this `OTPAdminSite`, which admits only users verified by a confirmed device, under the usual name
"admin" so that `admin:` URLs keep resolving.
"""

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django_otp.admin import OTPAdminSite


class StaffAdminSite(OTPAdminSite):
    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """django-axes' answer to a locked-out login: a page saying for how long and whom to ask, 429."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    context = {
        "title": "Login locked",
        "site_header": "fintech back office",
        "minutes": minutes,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "contact": settings.STAFF_LOCKOUT_CONTACT,
    }
    return render(request, "staff/locked_out.html", context, status=429)
