from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The staff operations console: the admin's dashboard, a payment's timeline and search, the projection and
    reconciliation pages. It reads every app through their selectors and acts through their services; nothing
    below it knows it exists."""

    name = "console"
    verbose_name = "Operations console"
    default_auto_field = "django.db.models.BigAutoField"
