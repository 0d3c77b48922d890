from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from accounts.services import api_token_issue, customer_register
from fintech import policy
from fintech.eventstore import command_metadata
from fintech.money import Money
from ledger.domain import AccountKind
from ledger.services import account_deposit, account_open, transfer_create
from payments import services as payments
from vault.services import card_tokenize

DEMO_MERCHANT = "demo-shop"
DEMO_USER = "demo-shop-api"
FINANCE_USER = "finance-api"
ADMIN_USER = "admin"
# Card processors' test numbers, vaulted for the demo merchant: payments take only its vault tokens.
DEMO_CARDS = {
    "visa": "4242424242424242",
    "mastercard": "5555555555554444",
    "amex": "378282246310005",
}


class Command(BaseCommand):
    help = (
        "Load a small demo data set once: a merchant, its API token, an admin login, a few test cards in the vault "
        "and payments made with them."
    )

    @transaction.atomic
    def handle(self, *args, **options):
        users = get_user_model().objects
        if users.filter(username=DEMO_USER).exists():
            self.stdout.write("demo data already loaded (tokens are printed only once; issue_api_token makes more)")
            return
        token = api_token_issue(username=DEMO_USER, merchant_id=DEMO_MERCHANT)
        finance_token = api_token_issue(username=FINANCE_USER, group=policy.FINANCE)
        actor = f"user:{users.get(username=DEMO_USER).pk}"
        cards = self._cards()
        with command_metadata(correlation_id="demo-data"):
            self._payments(actor, cards)
            accounts = self._ledger(actor)
        self.stdout.write(
            "\n".join(
                [
                    "demo data loaded:",
                    f"  merchant           {DEMO_MERCHANT}",
                    f"  API token          {token}   (Authorization: Token {token})",
                    f"  finance API token  {finance_token}   (accounts, deposits, transfers)",
                    f"  customer accounts  {' '.join(str(a) for a in accounts)}",
                    f"  admin login        {ADMIN_USER} at http://127.0.0.1:8000/admin/ (finance), password and TOTP:",
                ]
            )
        )
        # The same staff login `create_staff` makes (a superuser is no role it is not given: the demo admin moves
        # money in the admin as finance does); its last two lines are the password and the TOTP secret.
        call_command("create_staff", ADMIN_USER, role=policy.FINANCE, superuser=True, stdout=self.stdout)

    def _cards(self) -> dict[str, str]:
        """Vault the demo cards for the demo merchant; returns their tokens by brand."""
        # A few years ahead of whenever the demo is loaded, so its cards stay usable.
        exp_year = timezone.localdate().year + 4
        return {
            brand: card_tokenize(card_number=number, exp_month=12, exp_year=exp_year, merchant_id=DEMO_MERCHANT).token
            for brand, number in DEMO_CARDS.items()
        }

    def _payments(self, actor: str, cards: dict[str, str]) -> None:
        def new(amount: int, currency: str = "JPY", card: str = "visa"):
            return payments.payment_initiate(
                merchant_id=DEMO_MERCHANT,
                amount=Money(amount, currency),
                payment_method_token=cards[card],
                description="demo order",
                actor=actor,
            )

        new(1200)
        authorized = new(5400, card="mastercard")
        payments.payment_authorize(payment_id=authorized.id, actor=actor)
        captured = new(9800)
        payments.payment_authorize(payment_id=captured.id, actor=actor)
        payments.payment_capture(payment_id=captured.id, actor=actor)
        refunded = new(4599, "USD", card="amex")
        payments.payment_authorize(payment_id=refunded.id, actor=actor)
        payments.payment_capture(payment_id=refunded.id, actor=actor)
        payments.payment_refund(
            payment_id=refunded.id, amount=Money(599, "USD"), reason="one item returned", actor=actor
        )
        declined = new(2051)
        payments.payment_authorize(payment_id=declined.id, actor=actor)

    def _ledger(self, actor: str) -> list:
        """Two customers with JPY balances, one funded by a deposit, and a transfer between them."""
        accounts = []
        for name, email in (("Hanako Demo", "hanako@example.org"), ("Taro Demo", "taro@example.org")):
            customer = customer_register(name=name, email=email, actor=actor)
            accounts.append(
                account_open(
                    owner_type="customer",
                    owner_id=str(customer.id),
                    currency="JPY",
                    kind=AccountKind.CUSTOMER_BALANCE,
                    actor=actor,
                ).id
            )
        account_deposit(
            account_id=accounts[0], amount=Money(50_000, "JPY"), reference="demo bank transfer", actor=actor
        )
        transfer_create(
            from_account=accounts[0], to_account=accounts[1], amount=Money(12_000, "JPY"), reference="demo", actor=actor
        )
        return accounts
