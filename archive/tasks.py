import getpass

from celery import shared_task

from archive.lifecycle import lifecycle_apply


@shared_task(ignore_result=True)
def lifecycle_apply_task() -> None:
    """Celery beat (ARCHIVE_LIFECYCLE_SECONDS, daily by default): the retention policy applied to the event store
    and the archive; a month or object that fails is logged, the others go on, the next run tries it again."""
    lifecycle_apply(actor=f"archive.tasks.lifecycle_apply_task ({getpass.getuser()})")
