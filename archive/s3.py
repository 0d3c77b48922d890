"""The archive store on S3-compatible object storage (AWS S3, MinIO, Ceph, moto...): `FINTECH_ARCHIVE_URL=
s3://bucket/prefix`, every key under the prefix. A key's tier is its first part, and the tier is a storage class:
`warm/...` is written in FINTECH_ARCHIVE_WARM_STORAGE_CLASS (STANDARD_IA), `cold/...` in
FINTECH_ARCHIVE_COLD_STORAGE_CLASS (GLACIER_IR); `move` copies an object to its new key, in the new key's class,
then deletes the old one.

Cold means Glacier *Instant Retrieval*: archived events are read transparently (a refund of an old payment, a
projection replay, verify_archives), which an object in GLACIER or DEEP_ARCHIVE cannot serve without a restore
request that takes hours; those classes are refused.

Credentials come from boto3's standard chain (environment, shared config and profile, container or instance
role), never from our settings, and never appear in a message or a log line: errors become ArchiveStoreError
naming the operation, the key and S3's error code."""

from __future__ import annotations

import functools
import io
from urllib.parse import urlparse

import boto3
import botocore.config
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from archive.store import ArchiveStoreError

# Storage classes whose objects need a restore request (hours) before a GET: archived events must stay readable.
_NOT_READABLE = {"GLACIER", "DEEP_ARCHIVE"}
_MISSING = {"NoSuchKey", "404", "NotFound"}
# Single PUTs and copies stop at 5 GiB; above this size an object goes in parts (a month of events can be big).
_MULTIPART = 64 * 1024 * 1024
_RETRIES = {"mode": "standard", "max_attempts": 4}


@functools.lru_cache(maxsize=8)
def _client(endpoint: str):
    """One client per endpoint, shared (boto3 clients are thread-safe; building one loads the service model)."""
    session = boto3.session.Session()
    # An endpoint of our own (MinIO, moto) names its buckets by path; S3-compatible servers default to us-east-1.
    config = botocore.config.Config(
        retries=_RETRIES,
        connect_timeout=10,
        read_timeout=120,
        s3={"addressing_style": "path"} if endpoint else None,
    )
    return session.client(
        "s3",
        endpoint_url=endpoint or None,
        region_name=session.region_name or ("us-east-1" if endpoint else None),
        config=config,
    )


class S3Store:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        warm_class: str | None = None,
        cold_class: str | None = None,
        multipart_threshold: int = _MULTIPART,
    ) -> None:
        if not bucket:
            raise ArchiveStoreError("FINTECH_ARCHIVE_URL names no bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = settings.FINTECH_ARCHIVE_S3_ENDPOINT if endpoint is None else endpoint
        self.classes = {
            "warm": (warm_class or settings.FINTECH_ARCHIVE_WARM_STORAGE_CLASS).upper(),
            "cold": (cold_class or settings.FINTECH_ARCHIVE_COLD_STORAGE_CLASS).upper(),
        }
        for tier, storage_class in self.classes.items():
            if storage_class in _NOT_READABLE:
                raise ArchiveStoreError(
                    f"the {tier} storage class {storage_class} needs a restore request before every read; archived "
                    "events are read in place: use GLACIER_IR (instant retrieval) or STANDARD_IA"
                )
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold, multipart_chunksize=multipart_threshold, max_concurrency=4
        )

    @property
    def client(self):
        return _client(self.endpoint)

    def _key(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ArchiveStoreError(f"key {key!r} is not a relative path in the archive")
        return f"{self.prefix}/{key}" if self.prefix else key

    def storage_class(self, key: str) -> str | None:
        """The class an object under `key` is written in: its tier's, or the bucket's default for other keys."""
        return self.classes.get(key.split("/", 1)[0])

    def _extra(self, key: str) -> dict:
        storage_class = self.storage_class(key)
        return {"StorageClass": storage_class} if storage_class else {}

    def _error(self, operation: str, key: str, error: Exception) -> ArchiveStoreError:
        if isinstance(error, ClientError):
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                return ArchiveStoreError(f"archive object {key} is missing from {self.describe()}")
            if code == "InvalidObjectState":
                return ArchiveStoreError(
                    f"archive object {key} in {self.describe()} is in a storage class that needs a restore request "
                    "before it can be read"
                )
            message = str(error.response.get("Error", {}).get("Message", "")) or "no message"
            return ArchiveStoreError(f"S3 {operation} of {key} in {self.describe()} failed: {code} ({message})")
        # BotoCoreError (no credentials, endpoint unreachable, timeout...) and boto3's transfer errors say what
        # failed without the credentials; the type names the kind.
        return ArchiveStoreError(
            f"S3 {operation} of {key} in {self.describe()} failed: {type(error).__name__}: {error}"
        )

    def put(self, key: str, data: bytes) -> None:
        # One PUT is atomic: a reader never sees half an object. Above the threshold, a multipart upload, which
        # S3 assembles only once every part is in (a failed one is aborted by the transfer manager).
        try:
            self.client.upload_fileobj(
                io.BytesIO(data), self.bucket, self._key(key), ExtraArgs=self._extra(key), Config=self.transfer
            )
        except (ClientError, BotoCoreError, Boto3Error) as error:
            raise self._error("put", key, error) from None

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return response["Body"].read()
        except (ClientError, BotoCoreError) as error:
            raise self._error("get", key, error) from None

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code", "")) in _MISSING:
                return False
            raise self._error("head", key, error) from None
        except BotoCoreError as error:
            raise self._error("head", key, error) from None
        return True

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as error:
            raise self._error("delete", key, error) from None

    def keys(self, prefix: str = "") -> list[str]:
        base = f"{self.prefix}/" if self.prefix else ""
        found = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base + prefix):
                found += [item["Key"][len(base) :] for item in page.get("Contents", [])]
        except (ClientError, BotoCoreError) as error:
            raise self._error("list", prefix or "/", error) from None
        return sorted(found)

    def move(self, key: str, new_key: str) -> None:
        """Copy to `new_key` in its tier's storage class (in parts above the threshold: one CopyObject stops at
        5 GiB), then delete `key`. Cut off between the two, both exist, and running it again finishes it."""
        source = {"Bucket": self.bucket, "Key": self._key(key)}
        try:
            self.client.copy(
                source, self.bucket, self._key(new_key), ExtraArgs=self._extra(new_key), Config=self.transfer
            )
        except (ClientError, BotoCoreError, Boto3Error) as error:
            raise self._error("copy", key, error) from None
        self.delete(key)

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}"
        if not self.endpoint:
            return where
        # Without any user:password@ an endpoint URL might carry.
        endpoint = urlparse(self.endpoint)
        return f"{where} at {endpoint._replace(netloc=endpoint.netloc.rpartition('@')[2]).geturl()}"
