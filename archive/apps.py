from django.apps import AppConfig


class ArchiveConfig(AppConfig):
    """The data lifecycle: hot data in PostgreSQL, warm and cold in an archive store (a directory or S3), each
    object encrypted with the vault's keys and described by a manifest. It reads the tables of the apps below
    it; the event store reads archived events back through the reader it registers here."""

    name = "archive"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import archive.audit  # noqa: F401 - registers the audit logs' schemas for reading objects back
        import archive.snapshots  # noqa: F401 - and the balance snapshots'
        from archive.reader import ArchivedEvents
        from fintech import eventstore

        eventstore.archive_reader_set(ArchivedEvents())
