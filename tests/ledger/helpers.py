"""Plain helpers of the ledger tests (fixtures live in conftest.py)."""

from __future__ import annotations

import datetime as dt

from django.db.models import Max

from ledger.models import SettlementBatch

EARLIEST_REAL_DATE = dt.date(2000, 1, 1)


def settlement_day_of_its_own() -> dt.date:
    """A settlement date no batch has settled yet, long before any real capture's: the day after the latest batch
    of such days. The ledger is never emptied, tests included, so a capture booked due on it is the only one a run
    for that day settles, whatever ran before."""
    previous = SettlementBatch.objects.filter(settlement_date__lt=EARLIEST_REAL_DATE).aggregate(
        last=Max("settlement_date")
    )["last"]
    return (previous or EARLIEST_REAL_DATE - dt.timedelta(days=365_000)) + dt.timedelta(days=1)
