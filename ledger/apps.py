from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the ledger events, so every process can decode them, whether or not it loads the admin.
        import ledger.domain  # noqa: F401
        from ledger import bookings  # noqa: F401 - registers the payment bookings process manager
