from django.apps import AppConfig


class FintechConfig(AppConfig):
    name = "fintech"
    verbose_name = "Event store"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from fintech.partitions import ensure_partitions_after_migrate

        post_migrate.connect(ensure_partitions_after_migrate, sender=self)
