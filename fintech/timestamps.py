"""How the API and the caches write an instant: ISO 8601 in UTC with a "Z"."""

from __future__ import annotations

import datetime as dt


def iso_z(value: dt.datetime | None) -> str | None:
    """`2026-11-28T10:00:00.123456Z` for an aware UTC datetime; None stays None."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")
