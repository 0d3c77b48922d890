from celery import shared_task

from payments.services import payment_authorizations_recover


@shared_task(ignore_result=True)
def authorizations_recover_task() -> None:
    """Celery beat: settle with the acquirer the authorization attempts nobody recorded an answer for."""
    payment_authorizations_recover()
