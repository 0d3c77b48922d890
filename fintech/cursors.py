"""Opaque page cursors of the API's lists: the (time, id) of a page's last row, which the next page seeks past.
Clients get them as they are and hand them back untouched; their shape is no contract."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid


def cursor_encode(at: dt.datetime, row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(json.dumps([at.isoformat(), str(row_id)]).encode()).decode()


def cursor_decode(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    """ValueError for a cursor this API did not hand out."""
    try:
        at, row_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return dt.datetime.fromisoformat(at), uuid.UUID(row_id)
    except (TypeError, ValueError, binascii.Error) as bad:
        raise ValueError("not a cursor this API handed out") from bad
