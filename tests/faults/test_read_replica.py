"""The read models served from a real streaming replica (issue 14): the suite's own primary, a standby made from it
by pg_basebackup, and the application given both. While the standby replays, GET reads come from it; paused past
the bound, or stopped, the primary serves them; commands always run on the primary."""

from __future__ import annotations

import pytest
import requests

from tests.faults.load import VISA, money
from tests.faults.servers import wait_until
from tests.faults.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:.*XDG_RUNTIME_DIR")]

# Long enough that the paused standby is still within the bound while the first checks run.
MAX_LAG_SECONDS = "60"


class Merchant:
    def __init__(self, stack: Stack) -> None:
        self.base_url = stack.base_url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {stack.tokens['merchant']}"
        card = self.post("/api/v1/vault/tokens", {"card_number": VISA, "exp_month": 12, "exp_year": 2040})
        self.card_token = card["token"]

    def post(self, path: str, body: dict) -> dict:
        response = self.session.post(f"{self.base_url}{path}", json=body, timeout=10)
        assert response.status_code in {200, 201}, response.text
        return response.json()

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.base_url}{path}", timeout=10)

    def payment_create(self) -> str:
        return self.post("/api/v1/payments", {"amount": money(1500), "payment_method": {"token": self.card_token}})[
            "id"
        ]

    def listed(self) -> set[str]:
        response = self.get("/api/v1/payments?limit=200")
        assert response.status_code == 200, response.text
        return {payment["id"] for payment in response.json()["results"]}

    def readiness(self) -> dict:
        return self.get("/readyz").json()


def _projected_on_primary(stack: Stack, payment_id: str, status: str = "initiated") -> bool:
    rows = stack.sql("SELECT status FROM projections_payment WHERE payment_id = %s", [payment_id])
    return rows == [(status,)]


def test_read_models_come_from_the_replica_and_from_the_primary_when_it_cannot_serve():
    app_env = {"DATABASE_REPLICA_MAX_LAG_SECONDS": MAX_LAG_SECONDS}
    with Stack(replica=True, say=lambda line: None, app_env=app_env) as stack:
        merchant = Merchant(stack)
        # given a payment the standby has replayed
        first = merchant.payment_create()
        wait_until(lambda: first in merchant.listed(), what="the first payment listed", timeout=30)
        assert merchant.readiness()["checks"]["replica"] == "ok"

        # when the standby stops replaying and a second payment is projected on the primary
        stack.replica.sql("SELECT pg_wal_replay_pause()")
        second = merchant.payment_create()
        wait_until(lambda: _projected_on_primary(stack, second), what="the second payment projected", timeout=30)
        # then the list, read on the standby, does not show it yet
        assert merchant.listed() == {first}
        # and a command on it runs on the primary all the same
        merchant.post(f"/api/v1/payments/{second}/authorize", {})
        wait_until(
            lambda: _projected_on_primary(stack, second, "authorized"), what="the authorization projected", timeout=30
        )

        # when the application allows the standby only a second of lag
        stack.web.stop()
        stack.web.env["DATABASE_REPLICA_MAX_LAG_SECONDS"] = "1"
        stack.web_start()
        # then the primary serves the list (the paused standby is behind), and readiness says so without failing
        wait_until(lambda: second in merchant.listed(), what="the primary serving the list", timeout=15)
        ready = merchant.readiness()
        assert ready["status"] == "ready"
        assert ready["checks"]["replica"] == "unusable: reads go to the primary"

        # when the standby replays again, it serves again
        stack.replica.sql("SELECT pg_wal_replay_resume()")
        wait_until(
            lambda: merchant.readiness()["checks"]["replica"] == "ok", what="the standby usable again", timeout=15
        )
        assert second in merchant.listed()

        # when the standby goes down altogether
        stack.replica.stop("immediate")
        third = merchant.payment_create()
        wait_until(lambda: _projected_on_primary(stack, third), what="the third payment projected", timeout=30)

        # then reads keep being answered, by the primary, within a check's interval (a request that was already
        # on the standby's connection answers 503, to be retried)
        def listed_whole() -> bool:
            response = merchant.get("/api/v1/payments?limit=200")
            assert response.status_code in {200, 503}, response.text
            return response.status_code == 200 and {p["id"] for p in response.json()["results"]} == {
                first,
                second,
                third,
            }

        wait_until(listed_whole, what="the primary serving the list", timeout=10)
        assert merchant.readiness()["status"] == "ready"

        # and the books are whole
        verdicts = stack.verdicts()
        assert all(verdict["ok"] for verdict in verdicts.values()), verdicts
