"""Idempotency records: fingerprints keyed under the vault's KEK (not SECRET_KEY), and purged past their time
to live by a beat task, whether or not their key is ever reused."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.services import api_token_issue
from fintech.celery import app
from fintech.models import IdempotencyRecord
from fintech.services import idempotency_records_purge
from fintech.tasks import idempotency_records_purge_task
from tests.vault.helpers import EXP_MONTH, EXP_YEAR, TOKENS_URL, api_client, pan_random, unique_merchant_id
from vault import keys

pytestmark = pytest.mark.django_db


@pytest.fixture
def merchant_id() -> str:
    return unique_merchant_id()


@pytest.fixture
def vault_merchant_client(merchant_id):
    return api_client(api_token_issue(username=f"user-{merchant_id}", merchant_id=merchant_id))


def _payload(path: str, body: dict) -> str:
    # What fintech.api fingerprints: the method, the path and the parsed body.
    return json.dumps(["POST", path, body], sort_keys=True, default=str)


def test_fingerprint_of_tokenisation_not_reproducible_from_secret_key(vault_merchant_client, merchant_id):
    # given a tokenisation sent with an Idempotency-Key
    body = {"card_number": pan_random(), "exp_month": EXP_MONTH, "exp_year": EXP_YEAR}
    first = vault_merchant_client.post(TOKENS_URL, body, format="json", HTTP_IDEMPOTENCY_KEY="fp-1")
    assert first.status_code == 201
    # when the stored fingerprint is compared with what SECRET_KEY alone computes over the same request
    record = IdempotencyRecord.objects.get(owner__username=f"user-{merchant_id}", key="fp-1")
    with_secret_key = salted_hmac("fintech.idempotency", _payload(TOKENS_URL, body), algorithm="sha256")
    # then SECRET_KEY does not reproduce it: the key is the vault's idempotency key, held under the KEK
    assert record.fingerprint != with_secret_key.hexdigest()
    assert record.fingerprint == keys.idempotency_fingerprint(_payload(TOKENS_URL, body))
    assert len(record.fingerprint) == 64
    # and a retry still replays, while another body under the key is still refused
    again = vault_merchant_client.post(TOKENS_URL, body, format="json", HTTP_IDEMPOTENCY_KEY="fp-1")
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = vault_merchant_client.post(
        TOKENS_URL, {**body, "card_number": pan_random()}, format="json", HTTP_IDEMPOTENCY_KEY="fp-1"
    )
    assert other.status_code == 422


def _records(owner, *ages_hours: float, prefix: str = "k") -> list[IdempotencyRecord]:
    records = []
    for number, age in enumerate(ages_hours):
        record = IdempotencyRecord.objects.create(
            owner=owner, key=f"{prefix}-{number}", fingerprint="0" * 64, response_status=201, response_body={}
        )
        # created_at is auto_now_add: age the row afterwards
        IdempotencyRecord.objects.filter(pk=record.pk).update(created_at=timezone.now() - timedelta(hours=age))
        records.append(record)
    return records


def test_idempotency_records_purge_deletes_expired_in_batches_keeps_fresh(settings):
    # given records on both sides of the time to live, more expired ones than a batch holds
    settings.IDEMPOTENCY_KEY_TTL_HOURS = 24
    owner = get_user_model().objects.create(username="purge-owner")
    expired = _records(owner, 25, 48, 24.5, 100, 30)
    fresh = _records(owner, 0, 1, 23, prefix="fresh")
    # when the purge runs with batches of two
    deleted = idempotency_records_purge(batch_size=2)
    # then every expired record is gone and the fresh ones stay
    assert deleted == len(expired)
    assert not IdempotencyRecord.objects.filter(pk__in=[r.pk for r in expired]).exists()
    assert set(IdempotencyRecord.objects.filter(owner=owner).values_list("pk", flat=True)) == {r.pk for r in fresh}
    # and running it again deletes nothing
    assert idempotency_records_purge() == 0


def test_idempotency_records_purge_task_scheduled_by_beat_and_purges():
    # given an expired record
    owner = get_user_model().objects.create(username="purge-task-owner")
    [record] = _records(owner, settings.IDEMPOTENCY_KEY_TTL_HOURS + 1)
    # then beat schedules a task the worker knows
    app.loader.import_default_modules()
    entry = settings.CELERY_BEAT_SCHEDULE["idempotency-records-purge"]
    assert entry["task"] == idempotency_records_purge_task.name
    assert entry["task"] in app.tasks
    # and when it runs, the record is gone
    idempotency_records_purge_task()
    assert not IdempotencyRecord.objects.filter(pk=record.pk).exists()
