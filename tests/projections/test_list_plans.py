"""Every filter shape of GET /payments reads an index range in the list's order, and the next page seeks to its
cursor in that index: no sort of the merchant's payments, no scan of the pages before (issue 14: the status
index lacked the sort key, and the cursor was an OR the index could only filter by)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection, transaction

from projections.models import PaymentView
from projections.selectors import PaymentFilters, _cursor_encode, list_plan, payment_list_rows

pytestmark = pytest.mark.django_db

MERCHANT = "m-plans"
NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def _filters(**values) -> PaymentFilters:
    return PaymentFilters(**values)


def _nodes(plan: dict) -> list[dict]:
    found = [plan]
    for child in plan.get("Plans", []):
        found += _nodes(child)
    return found


def _plan(rows) -> list[dict]:
    with transaction.atomic(), connection.cursor() as cursor:
        # A sort made costly: a plan that still sorts is one no index can give in order.
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_seqscan = off")
        (plan,) = json.loads(rows[:101].explain(format="json"))
    return _nodes(plan["Plan"])


CURSOR = _cursor_encode(PaymentView(created_at=NOW, payment_id="00000000-0000-0000-0000-000000000001"))


@pytest.mark.parametrize(
    ("shape", "filters", "index"),
    [
        ("plain", _filters(), "projections_payment_list"),
        ("status", _filters(status="captured"), "projections_pay_status_list"),
        ("currency", _filters(currency="JPY"), "projections_pay_currency_list"),
        (
            "created range",
            _filters(created_from=NOW - dt.timedelta(days=7), created_to=NOW),
            "projections_payment_list",
        ),
        ("amount range", _filters(amount_min=1000, amount_max=5000), "projections_payment_list"),
    ],
)
@pytest.mark.parametrize("cursor", [None, CURSOR])
def test_each_filter_shape_reads_an_index_in_order(shape, filters, index, cursor):
    nodes = _plan(payment_list_rows(merchant_id=MERCHANT, filters=filters, cursor=cursor))
    assert not [n for n in nodes if n["Node Type"] in ("Sort", "Incremental Sort")], shape
    scans = [n for n in nodes if n.get("Index Name")]
    assert [n["Index Name"] for n in scans] == [index], shape
    if cursor:
        # the cursor is where the index range starts, not a filter over the pages before it
        assert "created_at, payment_id" in scans[0].get("Index Cond", "").replace("ROW(", "("), scans[0]


QUIET = "m-plans-quiet"


def _interleaved_payments(count: int) -> None:
    """`count` payments of nine merchants in turn, as traffic writes them: eight recent ones, and QUIET, all of
    whose payments are a year older than everyone else's."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO projections_payment (payment_id, merchant_id, currency, amount, authorized_amount, "
            "captured_amount, refunded_amount, status, description, token, brand, last4, authorization_code, "
            "failure_code, created_at, version) SELECT gen_random_uuid(), "
            "CASE WHEN n %% 9 = 0 THEN %s ELSE 'm-plans-busy-' || n %% 9 END, 'JPY', 1000 + n %% 500, 0, 0, 0, "
            "'captured', '', 'tok_x', 'visa', '4242', '', '', "
            "%s + n * interval '1 second' - CASE WHEN n %% 9 = 0 THEN interval '400 days' ELSE interval '0' END, 3 "
            "FROM generate_series(1, %s) AS n",
            [QUIET, NOW - dt.timedelta(days=1), count],
        )


@pytest.mark.django_db(transaction=True)
def test_a_merchant_whose_payments_are_all_older_than_the_others_pages_by_its_own_index():
    _interleaved_payments(90_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE projections_payment")
    rows = payment_list_rows(merchant_id=QUIET, filters=_filters(), cursor=None)
    with list_plan():
        # the plan as the server chooses it, sorts allowed
        (plan,) = json.loads(rows[:101].explain(format="json"))
    scans = [n.get("Index Name") for n in _nodes(plan["Plan"]) if n.get("Index Name")]
    assert scans == ["projections_payment_list"], scans
