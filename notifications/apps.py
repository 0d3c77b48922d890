from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """Telling merchants and other services what happened to payments: merchant webhooks (signed, delivered at
    least once), the notification inbox and the event bus. Built on the projection engine and the read models
    below it; webhook secrets are sealed by the vault."""

    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import notifications.projection  # noqa: F401 - registers the webhooks projection
        from notifications import bus, services

        services.secrets_register()
        bus.register()
