"""The admin behind two factors: every staff login needs a password and a TOTP code (django-otp).

The apps register their pages on the default site (`@admin.register`); fintech.apps.StaffAdminConfig makes that
default site this `OTPAdminSite`, which admits only users verified by a confirmed device, under the usual name
"admin" so that `admin:` URLs keep resolving.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django import forms
from django.apps import apps as django_apps
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite


class StaffLoginForm(OTPAdminAuthenticationForm):
    """Username, password and code in one submission; a wrong code counts as a failed login for the lockout."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Said as the user sees it, and filled in by the browser or password manager from the authenticator.
        self.fields["otp_token"].label = "Code from your authenticator app"
        self.fields["otp_token"].widget.attrs.update({"autocomplete": "one-time-code", "inputmode": "numeric"})

    def _chosen_device(self, user):
        # django-otp asks which device to check when the form names none (trying them all would throttle the
        # others); a staff user has the one TOTP device create_staff gave it, so that is the one.
        device = super()._chosen_device(user)
        if device is None:
            devices = list(devices_for_user(user, confirmed=True, for_verify=True))
            if len(devices) == 1:
                device = devices[0]
        return device

    def clean(self):
        try:
            return super().clean()
        except forms.ValidationError as error:
            if self.user_cache is not None:
                # The password was right and the code was not: django-axes counts it like a wrong password, so
                # guessing codes for a known password is locked out as guessing passwords is.
                credentials = {"username": self.cleaned_data.get("username")}
                user_login_failed.send(sender=__name__, credentials=credentials, request=self.request)
            raise error


@dataclass(frozen=True)
class _Page:
    route: str
    view: Callable
    name: str
    app_label: str
    title: str
    visible: Callable[[object], bool] | None


class StaffAdminSite(OTPAdminSite):
    """Besides the model pages, the pages an app above the kernel registers (`page_register`: the operations
    console) behind the same login, and a front page whose context that app provides (`index_provide`)."""

    login_form = StaffLoginForm
    # Username, password and code only: django-otp's own template adds a device list and a challenge button,
    # which mean nothing for users with one TOTP device each.
    login_template = "staff/login.html"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        self._pages: list[_Page] = []
        self._index_context: Callable[[HttpRequest], dict] | None = None

    def page_register(
        self,
        route: str,
        view: Callable,
        name: str,
        *,
        app_label: str = "",
        title: str = "",
        visible: Callable[[object], bool] | None = None,
    ) -> None:
        """A page at admin/<route>, named admin:<name>, for verified staff only; the view checks the policy.
        With a title it is listed among `app_label`'s models (front page and navigation) for the users
        `visible` admits."""
        self._pages.append(_Page(route, view, name, app_label, title, visible))

    def index_provide(self, context: Callable[[HttpRequest], dict], *, template: str) -> None:
        """The front page's extra context, computed per request, and the template that shows it."""
        self._index_context = context
        self.index_template = template

    def get_urls(self):
        pages = [path(page.route, self.admin_view(page.view), name=page.name) for page in self._pages]
        return pages + super().get_urls()

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        for page in self._pages:
            if not page.title or (app_label and page.app_label != app_label):
                continue
            if page.visible is not None and not page.visible(request.user):
                continue
            url = reverse(f"{self.name}:{page.name}")
            app = next((a for a in apps if a["app_label"] == page.app_label), None)
            if app is None:
                name = django_apps.get_app_config(page.app_label).verbose_name
                app = {"name": name, "app_label": page.app_label, "app_url": url, "models": []}
                apps.append(app)
            app["models"].insert(0, {"name": page.title, "object_name": page.name, "admin_url": url, "view_only": True})
        return apps

    def index(self, request, extra_context=None):
        if self._index_context is not None:
            extra_context = {**self._index_context(request), **(extra_context or {})}
        return super().index(request, extra_context)


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
