"""Short-lived operational rows follow their own short policy: console operations and staff login records a
year, sessions nothing past their expiry; the lifecycle job deletes what is past it, and nothing younger."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from axes.models import AccessAttempt, AccessLog
from django.contrib.sessions.models import Session
from django.utils import timezone

from archive.shortlived import short_lived_purge
from console.models import Operation

pytestmark = pytest.mark.django_db(transaction=True)


def _operation(requested_at, state="done") -> Operation:
    return Operation.objects.create(
        kind="reconcile", target="", state=state, requested_by="test", requested_at=requested_at
    )


def _access(model, attempt_time):
    row = model.objects.create(
        user_agent="test",
        ip_address="192.0.2.1",
        username=f"u-{uuid.uuid4().hex[:6]}",
        http_accept="*/*",
        path_info="/admin/login/",
        **({"failures_since_start": 1} if model is AccessAttempt else {}),
    )
    model.objects.filter(pk=row.pk).update(attempt_time=attempt_time)
    return row


def _session(expire_date) -> Session:
    return Session.objects.create(session_key=uuid.uuid4().hex, session_data="x", expire_date=expire_date)


def test_rows_past_their_policy_are_deleted_and_younger_ones_stay():
    now = timezone.now()
    old, recent = now - dt.timedelta(days=400), now - dt.timedelta(days=30)
    old_done, old_open, recent_done = _operation(old), _operation(old, state="running"), _operation(recent)
    old_log, recent_log = _access(AccessLog, old), _access(AccessLog, recent)
    old_attempt = _access(AccessAttempt, old)
    Session.objects.create(
        session_key="expired" + uuid.uuid4().hex[:20], session_data="x", expire_date=now - dt.timedelta(minutes=1)
    )
    live = Session.objects.create(
        session_key="live" + uuid.uuid4().hex[:20], session_data="x", expire_date=now + dt.timedelta(minutes=30)
    )
    deleted = short_lived_purge(now)
    # the old finished operation, the old login records and the expired session are gone
    assert not Operation.objects.filter(id=old_done.id).exists()
    assert not AccessLog.objects.filter(pk=old_log.pk).exists()
    assert not AccessAttempt.objects.filter(pk=old_attempt.pk).exists()
    assert not Session.objects.filter(expire_date__lt=now).exists()
    assert deleted["console_operation"] >= 1
    # an open operation is never deleted, and what is younger than its policy stays
    assert Operation.objects.filter(id__in=[old_open.id, recent_done.id]).count() == 2
    assert AccessLog.objects.filter(pk=recent_log.pk).exists()
    assert Session.objects.filter(pk=live.pk).exists()
