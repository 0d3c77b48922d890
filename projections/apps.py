from django.apps import AppConfig


class ProjectionsConfig(AppConfig):
    name = "projections"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from fintech import eventstore
        from projections import balances, payments  # noqa: F401 - register the read models' projections
        from projections.balances import balances_write_through
        from projections.services import projections_wake

        eventstore.subscribe(balances_write_through)
        eventstore.subscribe(projections_wake)
