from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the customer events, so every process can decode them, whether or not it loads the admin.
        import accounts.domain  # noqa: F401
        from accounts import signals

        signals.connect()
