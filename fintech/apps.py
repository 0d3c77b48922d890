from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class FintechConfig(AppConfig):
    name = "fintech"
    verbose_name = "Event store"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_login_failed
        from django.db.models.signals import post_migrate

        # The project's Celery app becomes the current one, for the tasks this process sends (shared_task binds
        # to it). Here rather than in the package's __init__: importing fintech.events or fintech.money from a
        # pure domain module must not load Celery and Django.
        import fintech.celery  # noqa: F401
        from fintech.partitions import ensure_partitions_after_migrate
        from fintech.staffaudit import login_failed_recorded, login_recorded

        post_migrate.connect(ensure_partitions_after_migrate, sender=self)
        # The staff audit trail's logins: signals, since django.contrib.auth must not know the trail.
        user_logged_in.connect(login_recorded, dispatch_uid="fintech.staffaudit.login")
        user_login_failed.connect(login_failed_recorded, dispatch_uid="fintech.staffaudit.login_failed")


class StaffAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with fintech.admin_site.StaffAdminSite (password + TOTP) as its default site."""

    default = False  # named in INSTALLED_APPS; FintechConfig stays this module's default
    default_site = "fintech.admin_site.StaffAdminSite"
