import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.services import api_token_issue
from fintech.eventstore import command_metadata
from fintech.money import Money
from payments import services as payments

DEMO_MERCHANT = "demo-shop"
DEMO_USER = "demo-shop-api"
ADMIN_USER = "admin"


class Command(BaseCommand):
    help = "Load a small demo data set once: a merchant, its API token, an admin login and a few payments."

    @transaction.atomic
    def handle(self, *args, **options):
        users = get_user_model().objects
        if users.filter(username=DEMO_USER).exists():
            self.stdout.write("demo data already loaded (tokens are printed only once; issue_api_token makes more)")
            return
        token = api_token_issue(username=DEMO_USER, merchant_id=DEMO_MERCHANT)
        password = secrets.token_urlsafe(12)
        users.create_superuser(ADMIN_USER, password=password)
        actor = f"user:{users.get(username=DEMO_USER).pk}"
        with command_metadata(correlation_id="demo-data"):
            self._payments(actor)
        self.stdout.write(
            "\n".join(
                [
                    "demo data loaded:",
                    f"  merchant           {DEMO_MERCHANT}",
                    f"  API token          {token}   (Authorization: Token {token})",
                    f"  admin login        {ADMIN_USER} / {password}   http://127.0.0.1:8000/admin/",
                ]
            )
        )

    def _payments(self, actor: str) -> None:
        def new(amount: int, currency: str = "JPY", card: str = "tok_visa"):
            return payments.payment_initiate(
                merchant_id=DEMO_MERCHANT,
                amount=Money(amount, currency),
                payment_method_token=card,
                description="demo order",
                actor=actor,
            )

        new(1200)
        authorized = new(5400, card="tok_mastercard")
        payments.payment_authorize(payment_id=authorized.id, actor=actor)
        captured = new(9800)
        payments.payment_authorize(payment_id=captured.id, actor=actor)
        payments.payment_capture(payment_id=captured.id, actor=actor)
        refunded = new(4599, "USD", card="tok_amex")
        payments.payment_authorize(payment_id=refunded.id, actor=actor)
        payments.payment_capture(payment_id=refunded.id, actor=actor)
        payments.payment_refund(
            payment_id=refunded.id, amount=Money(599, "USD"), reason="one item returned", actor=actor
        )
        declined = new(2051)
        payments.payment_authorize(payment_id=declined.id, actor=actor)
