"""Costs that must not grow with the data: the payments projection's catch-up per event and a page of `GET
/payments` per filter shape, measured with the log at each of `sizes` events, printed side by side.

The section runs in a database of its own. At the first size the projection catches up from an empty checkpoint
over the whole log; at each next one the log is filled (COPY) up to that size and the projection catches up over
what was added, from where it stood. A page is `selectors.payment_list` (the query the API runs, 100 rows and the
next cursor) for the merchant with the most payments, the median of `PAGE_CALLS` calls: the plain list, by
status, by currency, an amount range, and the second page by its cursor.

Call only after django.setup() on the bench database.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from urllib.parse import quote, urlparse

import psycopg
from psycopg import sql

from tests.bench.database import _recreate
from tests.bench.projections import append_events, catch_up, log_size, reset_projection

PAGE_CALLS = 15
PAGE = 100
SHAPES = ("plain", "status", "currency", "amount range", "page 2")


def _page_ms(merchant_id: str) -> dict[str, float]:
    from projections.selectors import PaymentFilters, payment_list

    _, cursor = payment_list(merchant_id=merchant_id, filters=PaymentFilters(), cursor=None, limit=PAGE)
    status, currency = _most_common(merchant_id, "status"), _most_common(merchant_id, "currency")
    shapes = {
        "plain": (PaymentFilters(), None),
        "status": (PaymentFilters(status=status), None),
        "currency": (PaymentFilters(currency=currency), None),
        "amount range": (PaymentFilters(amount_min=1100, amount_max=1300), None),
        "page 2": (PaymentFilters(), cursor),
    }
    timings = {}
    for name, (filters, page_cursor) in shapes.items():
        samples = []
        for _ in range(PAGE_CALLS):
            started = time.perf_counter()
            rows, _ = payment_list(merchant_id=merchant_id, filters=filters, cursor=page_cursor, limit=PAGE)
            samples.append(time.perf_counter() - started)
            if len(rows) != PAGE:
                raise RuntimeError(f"{name}: a page of {len(rows)} rows, not {PAGE}")
        timings[name] = sorted(samples)[len(samples) // 2] * 1000
    return timings


def _most_common(merchant_id: str, column: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM projections_payment WHERE merchant_id = %s GROUP BY 1 ORDER BY count(*) DESC "  # noqa: S608
            "LIMIT 1",
            [merchant_id],
        )
        return cursor.fetchone()[0]


def _analyze() -> None:
    """What autovacuum does within a minute of a table growing by a tenth: the bench fills it faster than that,
    and pages planned on the statistics of a tenth of the rows are not what a deployment sees."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE projections_payment")


def _busiest_merchant() -> tuple[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT merchant_id, count(*) FROM projections_payment GROUP BY merchant_id ORDER BY 2 DESC LIMIT 1"
        )
        return cursor.fetchone()


@contextlib.contextmanager
def _own_database(url: str) -> Iterator[str]:
    """A database of the section's own (`<bench>_scale`), migrated, Django pointed at it meanwhile: the sizes
    are the log's alone, whatever the sections before left in theirs; dropped after."""
    from django.core.management import call_command
    from django.db import connection

    bench = connection.settings_dict["NAME"]
    name = f"{bench}_scale"
    _recreate(url, name)
    connection.close()
    connection.settings_dict["NAME"] = name
    try:
        call_command("migrate", interactive=False, verbosity=0)
        yield urlparse(url)._replace(path="/" + quote(name)).geturl()
    finally:
        connection.close()
        connection.settings_dict["NAME"] = bench
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def run(*, url: str, sizes: list[int], out: Callable[[str], None]) -> list[dict]:
    with _own_database(url) as own:
        return _run(url=own, sizes=sizes, out=out)


def _run(*, url: str, sizes: list[int], out: Callable[[str], None]) -> list[dict]:
    results = []
    for index, size in enumerate(sizes):
        existing = log_size(url)
        if size > existing:
            append_events(url, size - existing)
        if index == 0:
            reset_projection(url)
        applied, seconds = catch_up()
        _analyze()
        merchant_id, payments = _busiest_merchant()
        results.append(
            {
                "events": log_size(url),
                "applied": applied,
                "us_per_event": seconds / applied * 1e6 if applied else 0.0,
                "payments": payments,
                "pages": _page_ms(merchant_id),
            }
        )
    out("")
    out("costs against the size of the log (projection catch-up per event; GET /payments pages of 100, median ms)")
    out(f"{'log events':>12}{'caught up':>12}{'µs/event':>10}{'payments':>10}" + "".join(f"{s:>14}" for s in SHAPES))
    for row in results:
        pages = "".join(f"{row['pages'][shape]:>14.2f}" for shape in SHAPES)
        out(f"{row['events']:>12,}{row['applied']:>12,}{row['us_per_event']:>10.1f}{row['payments']:>10,}{pages}")
    if len(results) > 1:
        first, last = results[0], results[-1]
        ratios = [last["pages"][shape] / first["pages"][shape] for shape in SHAPES]
        out(
            f"  {last['events'] / first['events']:.0f}x the log: catch-up per event x"
            f"{last['us_per_event'] / first['us_per_event']:.2f}, pages x{min(ratios):.2f} to x{max(ratios):.2f}"
        )
    return results
