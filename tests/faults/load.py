"""A bounded load of mixed commands over HTTP, from a few client threads, and what the clients believe they did.

Each thread runs, at random, a payment flow (create, authorize, then capture, refunds or cancel; now and then a
declined card amount) or a ledger flow (a deposit, a transfer between customer accounts, sometimes one larger
than the balance: 422), each followed by a read. A belief is only updated from a definite answer; an entity
whose command never got one is marked uncertain and left out of the comparisons."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

from tests.faults.client import ApiClient, Call, Journal

CURRENCY = "JPY"
CUSTOMER_ACCOUNTS = 6
OPENING_DEPOSIT = 20_000
DECLINED_AMOUNT = 2051  # the acquirer simulator declines 2000-2999 with that response code
VISA = "4242424242424242"  # approved by the simulator


def money(amount: int) -> dict:
    return {"amount": amount, "currency": CURRENCY}


@dataclass
class PaymentBelief:
    amount: int
    status: str = "initiated"
    captured: int = 0
    refunded: int = 0
    events: list[str] = field(default_factory=lambda: ["PaymentInitiated"])
    uncertain: bool = False


@dataclass
class Beliefs:
    """What the clients were told happened, across every scenario of a run."""

    payments: dict[str, PaymentBelief] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=dict)  # customer account id → available
    uncertain_accounts: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True)
class Fixtures:
    card_token: str
    accounts: tuple[str, ...]


def _definite(call: Call) -> bool:
    """An answer that says what happened: 2xx done, 4xx refused (nothing done)."""
    return call.status is not None and call.status < 500


def fixtures_create(base_url: str, tokens: dict[str, str], beliefs: Beliefs) -> Fixtures:
    """The merchant's card token and the funded customer accounts the load uses, made through the API."""
    journal = Journal()
    merchant = ApiClient(base_url, tokens["merchant"], journal, retry_seconds=30)
    finance = ApiClient(base_url, tokens["finance"], journal, retry_seconds=30)
    try:
        card = merchant.command(
            "/api/v1/vault/tokens", {"card_number": VISA, "exp_month": 12, "exp_year": time.gmtime().tm_year + 4}
        )
        if card.status != 201:
            raise RuntimeError(f"could not tokenise the test card: {card.status} {card.answer}")
        accounts = []
        for index in range(CUSTOMER_ACCOUNTS):
            opened = finance.command(
                "/api/v1/accounts",
                {
                    "owner_type": "customer",
                    "owner_id": f"faults-customer-{index}",
                    "currency": CURRENCY,
                    "kind": "customer_balance",
                },
            )
            if opened.status != 201:
                raise RuntimeError(f"could not open an account: {opened.status} {opened.answer}")
            account = opened.answer["id"]
            funded = finance.command(
                f"/api/v1/accounts/{account}/deposits", {"amount": money(OPENING_DEPOSIT), "reference": "opening"}
            )
            if funded.status != 201:
                raise RuntimeError(f"could not fund an account: {funded.status} {funded.answer}")
            beliefs.balances[account] = OPENING_DEPOSIT
            accounts.append(account)
    finally:
        merchant.close()
        finance.close()
    return Fixtures(card_token=card.answer["token"], accounts=tuple(accounts))


class Load:
    """`clients` threads sending commands until stopped or `max_commands` each."""

    def __init__(
        self,
        *,
        base_url: str,
        tokens: dict[str, str],
        fixtures: Fixtures,
        beliefs: Beliefs,
        clients: int,
        max_commands: int,
        retry_seconds: float,
        think_seconds: float,
        seed: int,
    ) -> None:
        self.journal = Journal()
        self.fixtures, self.beliefs = fixtures, beliefs
        self.max_commands, self.think_seconds = max_commands, think_seconds
        self._stop = threading.Event()
        self._threads = []
        for index in range(clients):
            pair = (
                ApiClient(base_url, tokens["merchant"], self.journal, retry_seconds=retry_seconds),
                ApiClient(base_url, tokens["finance"], self.journal, retry_seconds=retry_seconds),
            )
            rng = random.Random(seed * 1000 + index)  # noqa: S311 - a load pattern, not a secret
            self._threads.append(threading.Thread(target=self._run, args=(pair, rng), daemon=True))

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, *, wait: bool = True) -> None:
        """Ask the threads to stop after their current command (which may still be retrying), and wait unless
        told not to (an interrupted run: the threads are daemons, they die with the process)."""
        self._stop.set()
        for thread in self._threads if wait else ():
            thread.join()

    def _run(self, clients: tuple[ApiClient, ApiClient], rng: random.Random) -> None:
        merchant, finance = clients
        sent = 0
        try:
            while not self._stop.is_set() and sent < self.max_commands:
                if rng.random() < 0.5:
                    sent += self._payment_flow(merchant, rng)
                else:
                    sent += self._ledger_flow(finance, rng)
        finally:
            merchant.close()
            finance.close()

    def _pause(self) -> bool:
        """Think time between commands; False when the load is stopping."""
        time.sleep(self.think_seconds)
        return not self._stop.is_set()

    # payments -----------------------------------------------------------------------------------------------
    def _payment_flow(self, client: ApiClient, rng: random.Random) -> int:
        declined = rng.random() < 0.1
        amount = DECLINED_AMOUNT if declined else rng.randrange(5000, 20000, 10)
        created = client.command(
            "/api/v1/payments", {"amount": money(amount), "payment_method": {"token": self.fixtures.card_token}}
        )
        if created.status != 201:
            return 1  # unknown payment id: nothing to follow (an orphan, if it committed, is checked by the log)
        payment_id = created.answer["id"]
        belief = PaymentBelief(amount=amount)
        with self.beliefs.lock:
            self.beliefs.payments[payment_id] = belief
        url = f"/api/v1/payments/{payment_id}"
        steps = [("authorize", None)]
        if not declined:
            if rng.random() < 0.1:
                steps.append(("cancel", None))
            else:
                captured = amount if rng.random() < 0.7 else amount // 2
                steps.append(("capture", captured))
                for _ in range(rng.randrange(3)):
                    steps.append(("refund", rng.randrange(100, 1000, 10)))
        sent = 1
        for action, value in steps:
            if not self._pause():
                break
            sent += 1
            if not self._payment_step(client, url, belief, action, value):
                break
        client.read(url)
        return sent

    def _payment_step(self, client: ApiClient, url: str, belief: PaymentBelief, action: str, value) -> bool:
        """Send one payment command and update the belief from its answer; False to end the flow."""
        if action == "authorize":
            call = client.command(f"{url}/authorize", {})
        elif action == "cancel":
            call = client.command(f"{url}/cancel", {"reason": "changed mind"})
        elif action == "capture":
            call = client.command(f"{url}/capture", {"amount": money(value)})
        else:
            call = client.command(f"{url}/refunds", {"amount": money(value), "reason": "partial"})
        with self.beliefs.lock:
            if not _definite(call):
                belief.uncertain = True
                return False
            if not call.succeeded:
                return False
            if action == "authorize":
                approved = call.answer["status"] == "authorized"
                belief.status = "authorized" if approved else "failed"
                belief.events.append("PaymentAuthorized" if approved else "PaymentFailed")
                return approved
            if action == "cancel":
                belief.status = "cancelled"
                belief.events.append("PaymentCancelled")
            elif action == "capture":
                belief.status, belief.captured = "captured", value
                belief.events.append("PaymentCaptured")
            else:
                belief.refunded += value
                belief.status = "refunded" if belief.refunded == belief.captured else "partially_refunded"
                belief.events.append("PaymentRefunded")
        return True

    # ledger -------------------------------------------------------------------------------------------------
    def _ledger_flow(self, client: ApiClient, rng: random.Random) -> int:
        accounts = self.fixtures.accounts
        target = rng.choice(accounts)
        amount = rng.randrange(100, 2000, 10)
        deposit = client.command(
            f"/api/v1/accounts/{target}/deposits", {"amount": money(amount), "reference": "top-up"}
        )
        self._ledger_belief(deposit, {target: amount})
        if not self._pause():
            return 1
        source, destination = rng.sample(accounts, 2)
        # Now and then more than any balance holds: 422 insufficient_funds, nothing moves.
        amount = rng.randrange(100, 4000, 10) if rng.random() < 0.9 else 10**7
        transfer = client.command(
            "/api/v1/transfers",
            {"from_account": source, "to_account": destination, "amount": money(amount), "reference": "move"},
        )
        self._ledger_belief(transfer, {source: -amount, destination: amount})
        client.read(f"/api/v1/accounts/{destination}/balance")
        return 2

    def _ledger_belief(self, call: Call, changes: dict[str, int]) -> None:
        with self.beliefs.lock:
            if not _definite(call):
                self.beliefs.uncertain_accounts.update(changes)
            elif call.succeeded:
                for account, change in changes.items():
                    self.beliefs.balances[account] += change
