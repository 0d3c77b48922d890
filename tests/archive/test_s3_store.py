"""The S3 archive store against a real S3-compatible server: moto's standalone server, started in a process of
its own for these tests, boto3 talking HTTP to it (no mocked client). The store's contract (keys under the
prefix, a missing object, errors without credentials, warm and cold storage classes read back with HeadObject),
then the whole events path with FINTECH_ARCHIVE_URL=s3://...: a month archived into the bucket, the payment
loading whole from it, verify_archives failing once the object is altered in the bucket, restore_events putting
the month back. Months 20 and more back: the other archive tests use 5 to 13."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import boto3
import pytest
from django.core.management import CommandError, call_command

from archive import reader
from archive.models import ArchiveObject
from archive.s3 import S3Store
from archive.store import ArchiveStoreError, archive_store
from fintech import eventstore, partitions
from tests.archive.conftest import project_all

FAKE_KEY_ID = "AKIAFAKEARCHIVETEST0"
FAKE_SECRET = "fake-secret-archive-test-do-not-print-0123"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory) -> Iterator[str]:
    """moto's server on a free port, with fake credentials in the environment and no AWS config file read; the
    process is stopped at the end of the module."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = open(tmp_path_factory.mktemp("moto") / "server.log", "wb")  # closed in teardown
    process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    env = {
        "AWS_ACCESS_KEY_ID": FAKE_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            patch.delenv(name, raising=False)
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    pytest.fail(f"moto's server exited ({process.returncode}): see {log.name}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        pytest.fail(f"moto's server did not listen on {port} within 60 s: see {log.name}")
                    time.sleep(0.2)
            yield endpoint
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


@pytest.fixture
def s3(s3_server):
    """A raw client of the server, to look behind the store's back."""
    return boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")


@pytest.fixture
def bucket(s3) -> str:
    name = f"archive-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def store(s3_server, bucket) -> S3Store:
    return S3Store(bucket, "fintech/archive", endpoint=s3_server, warm_class="STANDARD_IA", cold_class="GLACIER_IR")


@pytest.fixture
def archive_location(settings, s3_server, bucket):
    """old_month's months go to the bucket (this overrides conftest's directory), through the settings the
    deployment sets; old_month's teardown restores them from there while the server still runs."""
    settings.FINTECH_ARCHIVE_URL = f"s3://{bucket}/payments/archive"
    settings.FINTECH_ARCHIVE_S3_ENDPOINT = s3_server
    settings.FINTECH_ARCHIVE_WARM_STORAGE_CLASS = "STANDARD_IA"
    settings.FINTECH_ARCHIVE_COLD_STORAGE_CLASS = "GLACIER_IR"
    reader._table.cache_clear()
    yield bucket
    reader._table.cache_clear()


def _class(s3, bucket: str, key: str) -> str:
    # S3 leaves StorageClass out of HeadObject for STANDARD.
    return s3.head_object(Bucket=bucket, Key=key).get("StorageClass", "STANDARD")


# The store's contract


def test_put_get_exists_keys_delete_under_the_prefix(store, s3, bucket):
    store.put("warm/events/2024-01/a.parquet.enc", b"a")
    store.put("warm/events/2024-02/b.parquet.enc", b"bb")
    store.put("cold/events/2023-01/c.parquet.enc", b"ccc")
    s3.put_object(Bucket=bucket, Key="elsewhere/warm/x", Body=b"not ours")
    # the objects are in the bucket under the prefix
    listed = sorted(item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert listed == [
        "elsewhere/warm/x",
        "fintech/archive/cold/events/2023-01/c.parquet.enc",
        "fintech/archive/warm/events/2024-01/a.parquet.enc",
        "fintech/archive/warm/events/2024-02/b.parquet.enc",
    ]
    # and the store names them without it, only its own
    assert store.get("warm/events/2024-02/b.parquet.enc") == b"bb"
    assert store.exists("cold/events/2023-01/c.parquet.enc")
    assert not store.exists("cold/events/2023-01/nope")
    assert store.keys() == [
        "cold/events/2023-01/c.parquet.enc",
        "warm/events/2024-01/a.parquet.enc",
        "warm/events/2024-02/b.parquet.enc",
    ]
    assert store.keys("warm/events/2024-01/") == ["warm/events/2024-01/a.parquet.enc"]
    assert store.keys("purged/") == []
    # a put replaces the object whole
    store.put("warm/events/2024-02/b.parquet.enc", b"new")
    assert store.get("warm/events/2024-02/b.parquet.enc") == b"new"
    store.delete("warm/events/2024-02/b.parquet.enc")
    store.delete("warm/events/2024-02/b.parquet.enc")  # deleting what is gone is no error
    assert not store.exists("warm/events/2024-02/b.parquet.enc")
    assert store.keys("warm/") == ["warm/events/2024-01/a.parquet.enc"]


def test_many_keys_are_listed_across_pages(store):
    for n in range(1005):  # ListObjectsV2 returns 1000 a page
        store.put(f"warm/audit/{n:05d}", b"")
    assert store.keys("warm/audit/") == [f"warm/audit/{n:05d}" for n in range(1005)]


def test_a_missing_object_raises_archive_store_error(store):
    with pytest.raises(ArchiveStoreError, match="archive object warm/events/2024-03/gone is missing from s3://"):
        store.get("warm/events/2024-03/gone")
    with pytest.raises(ArchiveStoreError, match="archive object warm/events/2024-03/gone is missing"):
        store.move("warm/events/2024-03/gone", "cold/events/2024-03/gone")
    assert not store.exists("cold/events/2024-03/gone")


def test_warm_and_cold_objects_are_written_in_their_storage_classes(store, s3, bucket):
    store.put("warm/events/2024-04/m.parquet.enc", b"month")
    store.put("warm/events/2024-04/m.parquet.enc.manifest.json", b"{}")
    store.put("cold/events/2020-01/old.parquet.enc", b"old")
    store.put("reports/x.csv", b"neither tier")
    assert _class(s3, bucket, "fintech/archive/warm/events/2024-04/m.parquet.enc") == "STANDARD_IA"
    assert _class(s3, bucket, "fintech/archive/warm/events/2024-04/m.parquet.enc.manifest.json") == "STANDARD_IA"
    assert _class(s3, bucket, "fintech/archive/cold/events/2020-01/old.parquet.enc") == "GLACIER_IR"
    assert _class(s3, bucket, "fintech/archive/reports/x.csv") == "STANDARD"
    # cold is instant retrieval: read at once, no restore request
    assert store.get("cold/events/2020-01/old.parquet.enc") == b"old"


def test_move_from_warm_to_cold_changes_the_storage_class(store, s3, bucket):
    store.put("warm/events/2024-05/m.parquet.enc", b"sealed bytes")
    store.move("warm/events/2024-05/m.parquet.enc", "cold/events/2024-05/m.parquet.enc")
    assert not store.exists("warm/events/2024-05/m.parquet.enc")
    assert store.get("cold/events/2024-05/m.parquet.enc") == b"sealed bytes"
    assert _class(s3, bucket, "fintech/archive/cold/events/2024-05/m.parquet.enc") == "GLACIER_IR"
    assert store.keys() == ["cold/events/2024-05/m.parquet.enc"]


def test_a_large_object_goes_in_parts_and_keeps_its_class(s3_server, bucket, s3):
    # the smallest part S3 takes is 5 MiB: with the threshold there, 11 MiB is a multipart upload and copy
    store = S3Store(bucket, "big", endpoint=s3_server, multipart_threshold=5 * 1024 * 1024)
    data = os.urandom(11 * 1024 * 1024)
    store.put("warm/events/2024-06/big.parquet.enc", data)
    head = s3.head_object(Bucket=bucket, Key="big/warm/events/2024-06/big.parquet.enc")
    assert "-" in head["ETag"]  # a multipart ETag: "<md5 of the parts' md5s>-<parts>"
    assert head["StorageClass"] == "STANDARD_IA"
    store.move("warm/events/2024-06/big.parquet.enc", "cold/events/2024-06/big.parquet.enc")
    assert _class(s3, bucket, "big/cold/events/2024-06/big.parquet.enc") == "GLACIER_IR"
    assert store.get("cold/events/2024-06/big.parquet.enc") == data


def test_errors_are_archive_store_errors_without_credentials(s3_server):
    # a bucket that does not exist
    store = S3Store("no-such-archive-bucket", "p", endpoint=s3_server)
    with pytest.raises(ArchiveStoreError) as raised:
        store.put("warm/x", b"x")
    message = str(raised.value)
    assert "NoSuchBucket" in message
    assert "s3://no-such-archive-bucket/p" in message
    assert FAKE_SECRET not in message
    assert FAKE_KEY_ID not in message
    with pytest.raises(ArchiveStoreError, match="list"):
        store.keys()
    # a server that is not there: the connection error, not a botocore exception
    closed = S3Store("b", "p", endpoint=f"http://127.0.0.1:{_free_port()}")
    with pytest.raises(ArchiveStoreError, match="EndpointConnectionError") as raised:
        closed.get("warm/x")
    assert FAKE_SECRET not in str(raised.value)


def test_a_class_that_needs_a_restore_is_refused(s3_server, store, s3, bucket):
    with pytest.raises(ArchiveStoreError, match="DEEP_ARCHIVE needs a restore request"):
        S3Store(bucket, "p", endpoint=s3_server, cold_class="DEEP_ARCHIVE")
    with pytest.raises(ArchiveStoreError, match="GLACIER needs a restore request"):
        S3Store(bucket, "p", endpoint=s3_server, warm_class="GLACIER")
    # an object put in GLACIER behind the store's back says why it cannot be read
    s3.put_object(Bucket=bucket, Key="fintech/archive/cold/frozen", Body=b"x", StorageClass="GLACIER")
    with pytest.raises(ArchiveStoreError, match="needs a restore request before it can be read"):
        store.get("cold/frozen")


def test_archive_store_builds_the_s3_store_from_the_settings(settings, s3_server, bucket):
    settings.FINTECH_ARCHIVE_URL = f"s3://{bucket}/a/b/"
    settings.FINTECH_ARCHIVE_S3_ENDPOINT = s3_server
    settings.FINTECH_ARCHIVE_COLD_STORAGE_CLASS = "STANDARD"
    store = archive_store()
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix, store.classes["cold"]) == (bucket, "a/b", "STANDARD")
    assert store.describe() == f"s3://{bucket}/a/b at {s3_server}"
    store.put("warm/k", b"v")
    assert archive_store().get("warm/k") == b"v"


def test_describe_leaves_out_credentials_in_the_endpoint():
    store = S3Store("b", "p", endpoint="https://user:secret@minio.internal:9000")
    assert store.describe() == "s3://b/p at https://minio.internal:9000"


# The events path, with FINTECH_ARCHIVE_URL=s3://...


def _archive(first) -> str:
    out = io.StringIO()
    call_command("archive_events", f"--month={first:%Y-%m}", stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_month_archived_to_s3_loads_whole_from_the_bucket(old_month, pay_in, s3, archive_location):
    first = old_month(20)
    payment = pay_in(first)
    before = [(e.version, e.event_type, e.event_id) for e in eventstore.load(payment.id)]
    project_all()
    assert _archive(first).startswith(f"{first:%Y-%m}: archived")
    # the partition is gone, the object and its manifest are in the bucket under the prefix, in the warm class
    assert partitions.partition_name(first) not in partitions.existing_partitions()
    obj = ArchiveObject.objects.get(kind="events", period_start=first, state="archived")
    assert obj.key.startswith(f"warm/events/{first:%Y-%m}/")
    assert _class(s3, archive_location, f"payments/archive/{obj.key}") == "STANDARD_IA"
    assert s3.head_object(Bucket=archive_location, Key=f"payments/archive/{obj.key}.manifest.json")
    # and the payment loads whole, read from the bucket
    reader._table.cache_clear()
    assert [(e.version, e.event_type, e.event_id) for e in eventstore.load(payment.id)] == before
    call_command("verify_archives", stdout=io.StringIO())
    # (old_month's teardown restores the month from the bucket)


@pytest.mark.django_db(transaction=True)
def test_an_object_altered_in_the_bucket_fails_verify_and_a_restore_puts_the_month_back(
    old_month, pay_in, s3, archive_location
):
    first = old_month(21)
    payment = pay_in(first)
    before = [(e.version, e.event_id) for e in eventstore.load(payment.id)]
    project_all()
    _archive(first)
    obj = ArchiveObject.objects.get(kind="events", period_start=first, state="archived")
    key = f"payments/archive/{obj.key}"
    out = io.StringIO()
    call_command("verify_archives", stdout=out)
    assert "match their manifests" in out.getvalue()
    # when the object is altered in the bucket, behind the store's back
    original = s3.get_object(Bucket=archive_location, Key=key)["Body"].read()
    altered = bytearray(original)
    altered[len(altered) // 3] ^= 0x01
    s3.put_object(Bucket=archive_location, Key=key, Body=bytes(altered))
    reader._table.cache_clear()
    # then verify_archives fails, naming it, and restore_events refuses it
    err = io.StringIO()
    with pytest.raises(CommandError, match="do not match their manifests"):
        call_command("verify_archives", stdout=io.StringIO(), stderr=err)
    assert obj.key in err.getvalue()
    with pytest.raises(CommandError, match="not restored"):
        call_command("restore_events", f"--month={first:%Y-%m}", stdout=io.StringIO())
    # and a missing one is reported as missing
    s3.delete_object(Bucket=archive_location, Key=key)
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("verify_archives", stdout=io.StringIO(), stderr=err)
    assert "missing" in err.getvalue()
    # when the original is back, restore_events re-attaches the month from the bucket
    s3.put_object(Bucket=archive_location, Key=key, Body=original)
    out = io.StringIO()
    call_command("restore_events", f"--month={first:%Y-%m}", stdout=out)
    assert f"restored {obj.row_count} events" in out.getvalue()
    assert partitions.partition_name(first) in partitions.existing_partitions()
    assert ArchiveObject.objects.get(id=obj.id).state == "restored"
    assert [(e.version, e.event_id) for e in eventstore.load(payment.id)] == before
