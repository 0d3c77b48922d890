"""Keys: the key-encryption key (KEK) behind a KeyProvider, and the data keys it wraps.

The KEK is a Tink AEAD keyset (AES256_GCM). Data keys (DEKs) are single-key Tink AES256_GCM keysets, one per
vaulted card and one per data subject, stored only wrapped by the KEK (envelope encryption). Rotation adds a
new primary key to the KEK keyset; wrapped DEKs name the KEK key that wrapped them in their Tink prefix, so
`rotate_keys` knows what is left to re-wrap and `--retire` knows which old keys nothing uses any more.

Keyed functions (PRFs, HMAC-SHA256 Tink keysets) sit beside the KEK, each in its own file, wrapped by it and
stable across its rotations: `card-index` (the blind index that makes one card one token per merchant),
`pii-index` (blind indexes of personal data, `vault.fields`) and `idempotency` (fingerprints of API requests,
whose bodies may hold card numbers). Separate keys, so one of them leaking reveals nothing of the others.

A missing key is never replaced silently: a new KEK makes every vaulted card unreadable and a new index key
makes tokens diverge. In development (`create_missing`) a missing key is created with a WARNING; in production
it is an error (`vault.checks` refuses to start) until `manage.py create_keys` creates it on a first install.

Providers:
- LocalKeyProvider (default): the KEK keyset in a JSON file under VAULT_KEYS_DIR (`.data/keys/`), 0600
  permissions, or given whole in the VAULT_KEK_KEYSET environment variable (read-only).
- AwsKmsKeyProvider: the same keyset file, but stored encrypted under an AWS KMS key (Tink's KMS envelope
  support); the plaintext KEK exists only in memory. Needs the `aws` extra (boto3).
"""

from __future__ import annotations

import logging
import os
import struct
import threading
from pathlib import Path
from typing import Protocol

import tink
from tink import aead, prf, secret_key_access, streaming_aead
from tink.proto import tink_pb2

aead.register()
prf.register()
streaming_aead.register()

logger = logging.getLogger(__name__)

_TOKEN = secret_key_access.TOKEN
_TINK_PREFIX = 1  # Tink's TINK output prefix: 0x01 then the 4-byte key id


class VaultKeyError(Exception):
    """A key that is missing, destroyed or cannot be used."""


# name -> (file beside the KEK, associated data of its wrapping). The card index keeps the file and context it
# always had, so card tokens stay the same across the upgrade that gave personal data a key of its own.
PRF_KEYS = {
    "card-index": ("index.bin", b"vault-index-key"),
    "pii-index": ("index-pii.bin", b"vault-prf-key:pii-index"),
    "idempotency": ("idempotency.bin", b"vault-prf-key:idempotency"),
}
_CREATE_KEYS = "manage.py create_keys"


def key_id_of(ciphertext: bytes) -> int:
    """The id of the Tink key that produced a ciphertext (from its 5-byte prefix)."""
    if len(ciphertext) < 5 or ciphertext[0] != _TINK_PREFIX:
        raise VaultKeyError("not a Tink ciphertext")
    return struct.unpack(">I", ciphertext[1:5])[0]


class KeyProvider(Protocol):
    def kek(self) -> aead.Aead:
        """The KEK primitive: encrypts with the primary key, decrypts with any key still in the keyset."""

    def key_ids(self) -> list[int]: ...

    def primary_key_id(self) -> int: ...

    def rotate(self) -> int:
        """Add a new primary key and return its id; the old ones keep decrypting."""

    def retire(self, key_ids: set[int]) -> None:
        """Remove keys (never the primary) from the keyset: what they wrapped can no longer be unwrapped."""

    def prf(self, name: str) -> prf.Prf:
        """The keyed function `name` of PRF_KEYS (HMAC-SHA256), stable across KEK rotations."""

    def prf_keys_rewrap(self) -> list[str]:
        """Wrap every PRF key under the primary KEK key if it is not yet; the names of those it re-wrapped."""

    def missing(self) -> list[str]:
        """What is missing, one sentence per key (empty when every key is there)."""

    def create_missing_keys(self) -> list[str]:
        """Create whatever is missing (first install or a newly introduced key); the names of those created."""


class LocalKeyProvider:
    """KEK keyset in a 0600 JSON file (or an environment variable); the PRF keys beside it, wrapped."""

    def __init__(self, directory: Path, *, keyset_json: str | None = None, create_missing: bool = True) -> None:
        self.directory = Path(directory)
        self._env_keyset = keyset_json
        self._create_missing = create_missing
        self._lock = threading.Lock()
        self._handle: tink.KeysetHandle | None = None
        self._kek: aead.Aead | None = None
        self._prfs: dict[str, prf.Prf] = {}
        self._seen_stamp: tuple[int, int, int] | None = None

    # storage ------------------------------------------------------------------------------------------
    @property
    def kek_path(self) -> Path:
        return self.directory / "kek.json"

    def prf_path(self, name: str) -> Path:
        return self.directory / PRF_KEYS[name][0]

    def _stamp(self) -> tuple[int, int, int] | None:
        # The inode changes with every replacement (os.replace), even within one coarse timestamp tick.
        if self._env_keyset:
            return (0, 0, 0)
        try:
            info = self.kek_path.stat()
        except FileNotFoundError:
            return None
        return (info.st_ino, info.st_mtime_ns, info.st_size)

    def _read_keyset(self) -> tink.KeysetHandle | None:
        if self._env_keyset:
            return tink.json_proto_keyset_format.parse(self._env_keyset, _TOKEN)
        if not self.kek_path.exists():
            return None
        return tink.json_proto_keyset_format.parse(self.kek_path.read_text(), _TOKEN)

    def _write_keyset(self, handle: tink.KeysetHandle, *, create: bool = False) -> None:
        if self._env_keyset:
            raise VaultKeyError("the KEK comes from VAULT_KEK_KEYSET: rotate it where it is kept")
        _write_secret(self.kek_path, tink.json_proto_keyset_format.serialize(handle, _TOKEN).encode(), create=create)

    def _handle_now(self, *, create: bool = False) -> tink.KeysetHandle:
        # Another process may have rotated or retired keys: follow the file, or we would wrap under a key
        # that is about to disappear.
        stamp = self._stamp()
        if stamp != self._seen_stamp:
            self._handle, self._kek, self._prfs = None, None, {}
            self._seen_stamp = stamp
        if self._handle is None:
            handle = self._read_keyset()
            if handle is None:
                self._refuse_or_warn(f"the KEK keyset {self.kek_path}", create=create)
                try:
                    self._write_keyset(tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM), create=True)
                except FileExistsError:
                    pass  # another process created it first: use theirs
                handle = self._read_keyset()
            self._handle = handle
        return self._handle

    def _refuse_or_warn(self, what: str, *, create: bool) -> None:
        if create:
            return
        if not self._create_missing:
            raise VaultKeyError(
                f"{what} is missing. Restore it (a redeploy must keep the key volume or VAULT_KEK_KEYSET); "
                f"on a first install create it with `{_CREATE_KEYS}`"
            )
        logger.warning(
            "%s is missing: creating a NEW one. Anything vaulted under the previous key is unreadable and card "
            "tokens and blind indexes computed with it no longer match; `manage.py reindex_pii` recomputes the "
            "indexes of personal data (development only; production refuses)",
            what,
        )

    # KeyProvider ----------------------------------------------------------------------------------------
    def kek(self) -> aead.Aead:
        with self._lock:
            handle = self._handle_now()
            if self._kek is None:
                self._kek = handle.primitive(aead.Aead)
            return self._kek

    def reload(self) -> None:
        """Forget cached keys (another process may have rotated)."""
        with self._lock:
            self._handle, self._kek, self._prfs = None, None, {}

    def key_ids(self) -> list[int]:
        with self._lock:
            return [key.key_id for key in self._handle_now().keyset_info().key_info]

    def primary_key_id(self) -> int:
        with self._lock:
            return self._handle_now().keyset_info().primary_key_id

    def missing(self) -> list[str]:
        with self._lock:
            if self._read_keyset() is None:
                return [f"the KEK keyset {self.kek_path}"]
            return [f"the {name} key {self.prf_path(name)}" for name in PRF_KEYS if not self.prf_path(name).exists()]

    def create_missing_keys(self) -> list[str]:
        with self._lock:
            created = [] if self._read_keyset() is not None else ["kek"]
            self._handle_now(create=True)
            for name in PRF_KEYS:
                if not self.prf_path(name).exists():
                    self._prf_keyset_bytes(name, create=True)
                    self._prfs.pop(name, None)
                    created.append(name)
            return created

    def rotate(self) -> int:
        with self._lock:
            prf_keys = {name: self._prf_keyset_bytes(name) for name in PRF_KEYS if self.prf_path(name).exists()}
            keyset = _keyset_proto(self._handle_now())
            new_key = _keyset_proto(tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM)).key[0]
            while new_key.key_id in {key.key_id for key in keyset.key}:
                new_key = _keyset_proto(tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM)).key[0]
            keyset.key.append(new_key)
            keyset.primary_key_id = new_key.key_id
            handle = tink.proto_keyset_format.parse(keyset.SerializeToString(), _TOKEN)
            self._write_keyset(handle)
            self._handle, self._kek = handle, None
            # The PRF keys stay the same; only their wrapping moves to the new primary. Should we die before
            # this, rotate_keys --resume does it (and retiring refuses until it is done).
            for name, keyset_bytes in prf_keys.items():
                self._write_prf(name, keyset_bytes)
            return new_key.key_id

    def prf_keys_rewrap(self) -> list[str]:
        with self._lock:
            primary = self._handle_now().keyset_info().primary_key_id
            rewrapped = [name for name, key_id in self._prf_wrapping().items() if key_id != primary]
            for name in rewrapped:
                self._write_prf(name, self._prf_keyset_bytes(name))
            return rewrapped

    def retire(self, key_ids: set[int]) -> None:
        with self._lock:
            keyset = _keyset_proto(self._handle_now())
            if keyset.primary_key_id in key_ids:
                raise VaultKeyError("the primary key cannot be retired")
            for name, key_id in self._prf_wrapping().items():
                if key_id in key_ids:
                    raise VaultKeyError(f"the {name} key is still wrapped by a key to retire: run rotate_keys --resume")
            kept = [key for key in keyset.key if key.key_id not in key_ids]
            del keyset.key[:]
            keyset.key.extend(kept)
            handle = tink.proto_keyset_format.parse(keyset.SerializeToString(), _TOKEN)
            self._write_keyset(handle)
            self._handle, self._kek = handle, None

    def prf(self, name: str) -> prf.Prf:
        with self._lock:
            self._handle_now()
            if name not in self._prfs:
                keyset = tink.proto_keyset_format.parse(self._prf_keyset_bytes(name), _TOKEN)
                self._prfs[name] = keyset.primitive(prf.PrfSet).primary()
            return self._prfs[name]

    # the PRF keys, wrapped by the KEK ----------------------------------------------------------------------
    def _prf_keyset_bytes(self, name: str, *, create: bool = False) -> bytes:
        path, context = self.prf_path(name), PRF_KEYS[name][1]
        kek = self._handle_now().primitive(aead.Aead)
        if not path.exists():
            self._refuse_or_warn(f"the {name} key {path}", create=create)
            fresh = tink.new_keyset_handle(prf.prf_key_templates.HMAC_SHA256)
            try:
                wrapped = kek.encrypt(tink.proto_keyset_format.serialize(fresh, _TOKEN), context)
                _write_secret(path, wrapped, create=True)
            except FileExistsError:
                pass
        return kek.decrypt(path.read_bytes(), context)

    def _prf_wrapping(self) -> dict[str, int]:
        """The id of the KEK key that wraps each PRF key there is."""
        return {name: key_id_of(self.prf_path(name).read_bytes()) for name in PRF_KEYS if self.prf_path(name).exists()}

    def _write_prf(self, name: str, keyset_bytes: bytes) -> None:
        kek = self._handle_now().primitive(aead.Aead)
        _write_secret(self.prf_path(name), kek.encrypt(keyset_bytes, PRF_KEYS[name][1]))


class AwsKmsKeyProvider(LocalKeyProvider):
    """The KEK keyset file encrypted under an AWS KMS key (`aws-kms://arn:aws:kms:…`): Tink's KMS envelope."""

    def __init__(
        self, directory: Path, *, key_uri: str, credentials_path: str | None = None, create_missing: bool = True
    ) -> None:
        super().__init__(directory, create_missing=create_missing)
        from tink.integration import awskms  # the optional `aws` extra

        self._remote = awskms.AwsKmsClient(key_uri, credentials_path).get_aead(key_uri)

    @property
    def kek_path(self) -> Path:
        return self.directory / "kek.aws.bin"

    def _read_keyset(self) -> tink.KeysetHandle | None:
        if not self.kek_path.exists():
            return None
        return tink.proto_keyset_format.parse_encrypted(self.kek_path.read_bytes(), self._remote, b"fintech-kek")

    def _write_keyset(self, handle: tink.KeysetHandle, *, create: bool = False) -> None:
        _write_secret(
            self.kek_path,
            tink.proto_keyset_format.serialize_encrypted(handle, self._remote, b"fintech-kek"),
            create=create,
        )


def _keyset_proto(handle: tink.KeysetHandle) -> tink_pb2.Keyset:
    keyset = tink_pb2.Keyset()
    keyset.ParseFromString(tink.proto_keyset_format.serialize(handle, _TOKEN))
    return keyset


def _write_secret(path: Path, data: bytes, *, create: bool = False) -> None:
    """Write a key file readable by its owner only; `create` refuses to replace an existing one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    if create:
        try:
            os.link(temporary, path)  # atomic, and fails if another process won the race
        finally:
            temporary.unlink()
    else:
        os.replace(temporary, path)


# data keys -------------------------------------------------------------------------------------------------
def dek_new() -> tuple[aead.Aead, bytes]:
    """A fresh data key: its primitive and its serialized keyset (to be wrapped, never stored as is)."""
    handle = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM)
    return handle.primitive(aead.Aead), tink.proto_keyset_format.serialize(handle, _TOKEN)


def dek_wrap(provider: KeyProvider, keyset_bytes: bytes, *, context: bytes) -> bytes:
    return provider.kek().encrypt(keyset_bytes, context)


def dek_unwrap(provider: KeyProvider, wrapped: bytes, *, context: bytes) -> aead.Aead:
    return _primitive(dek_unwrap_bytes(provider, wrapped, context=context))


def dek_unwrap_bytes(provider: KeyProvider, wrapped: bytes, *, context: bytes) -> bytes:
    try:
        return provider.kek().decrypt(wrapped, context)
    except tink.TinkError:
        raise VaultKeyError(
            "the data key cannot be unwrapped (wrong record, tampered, or its KEK was retired)"
        ) from None


def streaming_dek_new(provider: KeyProvider, *, context: bytes) -> tuple[streaming_aead.StreamingAead, bytes, int]:
    """A fresh streaming data key for one archive object (AES256-GCM-HKDF, 1 MB segments): its primitive, its
    keyset wrapped by the KEK under `context`, and the id of the KEK key that wrapped it."""
    handle = tink.new_keyset_handle(streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB)
    wrapped = dek_wrap(provider, tink.proto_keyset_format.serialize(handle, _TOKEN), context=context)
    return handle.primitive(streaming_aead.StreamingAead), wrapped, key_id_of(wrapped)


def streaming_dek_unwrap(provider: KeyProvider, wrapped: bytes, *, context: bytes) -> streaming_aead.StreamingAead:
    keyset = dek_unwrap_bytes(provider, wrapped, context=context)
    return tink.proto_keyset_format.parse(keyset, _TOKEN).primitive(streaming_aead.StreamingAead)


def _primitive(keyset_bytes: bytes) -> aead.Aead:
    return tink.proto_keyset_format.parse(keyset_bytes, _TOKEN).primitive(aead.Aead)


_provider: KeyProvider | None = None
_provider_lock = threading.Lock()


def key_provider() -> KeyProvider:
    """The configured provider (settings.VAULT_KEY_PROVIDER), built once per process."""
    global _provider  # noqa: PLW0603 - one provider per process
    with _provider_lock:
        if _provider is None:
            from django.conf import settings

            directory = Path(settings.VAULT_KEYS_DIR)
            create_missing = settings.VAULT_KEYS_CREATE_MISSING
            if settings.VAULT_KEY_PROVIDER == "aws-kms":
                _provider = AwsKmsKeyProvider(
                    directory, key_uri=settings.VAULT_AWS_KMS_KEY_URI, create_missing=create_missing
                )
            else:
                _provider = LocalKeyProvider(
                    directory, keyset_json=settings.VAULT_KEK_KEYSET, create_missing=create_missing
                )
        return _provider


def key_provider_reset() -> None:
    """Drop the process's provider so the next call re-reads the settings (tests, after a rotation)."""
    global _provider  # noqa: PLW0603
    with _provider_lock:
        _provider = None


def idempotency_fingerprint(payload: str) -> str:
    """The fingerprint of an API request (settings.IDEMPOTENCY_FINGERPRINT): an HMAC under the `idempotency`
    key held by the KEK, not under SECRET_KEY, since the body may hold a card number whose BIN, last 4 and
    expiry the stored response shows (with SECRET_KEY and a dump, 10^5 guesses would find it)."""
    return key_provider().prf("idempotency").compute(payload.encode(), 32).hex()
