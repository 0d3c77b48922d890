"""Keys: the key-encryption key (KEK) behind a KeyProvider, and the data keys it wraps.

The KEK is a Tink AEAD keyset (AES256_GCM). Data keys (DEKs) are single-key Tink AES256_GCM keysets, one per
vaulted card and one per data subject, stored only wrapped by the KEK (envelope encryption). Rotation adds a
new primary key to the KEK keyset; wrapped DEKs name the KEK key that wrapped them in their Tink prefix, so
`rotate_keys` knows what is left to re-wrap and `--retire` knows which old keys nothing uses any more.

Providers:
- LocalKeyProvider (default): the KEK keyset in a JSON file under VAULT_KEYS_DIR (`.data/keys/`), created on
  first use with 0600 permissions, or given whole in the VAULT_KEK_KEYSET environment variable (read-only).
- AwsKmsKeyProvider: the same keyset file, but stored encrypted under an AWS KMS key (Tink's KMS envelope
  support); the plaintext KEK exists only in memory. Needs the `aws` extra (boto3).
"""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path
from typing import Protocol

import tink
from tink import aead, prf, secret_key_access
from tink.proto import tink_pb2

aead.register()
prf.register()

_TOKEN = secret_key_access.TOKEN
_TINK_PREFIX = 1  # Tink's TINK output prefix: 0x01 then the 4-byte key id


class VaultKeyError(Exception):
    """A key that is missing, destroyed or cannot be used."""


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

    def index_prf(self) -> prf.Prf:
        """The keyed function of blind indexes (HMAC-SHA256), stable across KEK rotations."""

    def index_rewrap(self) -> bool:
        """Wrap the blind-index key under the primary KEK key if it is not yet; True when it did."""


class LocalKeyProvider:
    """KEK keyset in a 0600 JSON file (or an environment variable); the blind-index key beside it, wrapped."""

    def __init__(self, directory: Path, *, keyset_json: str | None = None) -> None:
        self.directory = Path(directory)
        self._env_keyset = keyset_json
        self._lock = threading.Lock()
        self._handle: tink.KeysetHandle | None = None
        self._kek: aead.Aead | None = None
        self._prf: prf.Prf | None = None
        self._seen_stamp: tuple[int, int, int] | None = None

    # storage ------------------------------------------------------------------------------------------
    @property
    def kek_path(self) -> Path:
        return self.directory / "kek.json"

    @property
    def index_path(self) -> Path:
        return self.directory / "index.bin"

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

    def _handle_now(self) -> tink.KeysetHandle:
        # Another process may have rotated or retired keys: follow the file, or we would wrap under a key
        # that is about to disappear.
        stamp = self._stamp()
        if stamp != self._seen_stamp:
            self._handle = self._kek = self._prf = None
            self._seen_stamp = stamp
        if self._handle is None:
            handle = self._read_keyset()
            if handle is None:
                try:
                    self._write_keyset(tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM), create=True)
                except FileExistsError:
                    pass  # another process created it first: use theirs
                handle = self._read_keyset()
            self._handle = handle
        return self._handle

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
            self._handle = self._kek = self._prf = None

    def key_ids(self) -> list[int]:
        with self._lock:
            return [key.key_id for key in self._handle_now().keyset_info().key_info]

    def primary_key_id(self) -> int:
        with self._lock:
            return self._handle_now().keyset_info().primary_key_id

    def rotate(self) -> int:
        with self._lock:
            index = self._index_keyset_bytes()
            keyset = _keyset_proto(self._handle_now())
            new_key = _keyset_proto(tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM)).key[0]
            while new_key.key_id in {key.key_id for key in keyset.key}:
                new_key = _keyset_proto(tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM)).key[0]
            keyset.key.append(new_key)
            keyset.primary_key_id = new_key.key_id
            handle = tink.proto_keyset_format.parse(keyset.SerializeToString(), _TOKEN)
            self._write_keyset(handle)
            self._handle, self._kek = handle, None
            # The index key stays the same; only its wrapping moves to the new primary. Should we die before
            # this, rotate_keys --resume does it (and retiring refuses until it is done).
            self._write_index(index)
            return new_key.key_id

    def index_rewrap(self) -> bool:
        with self._lock:
            if key_id_of(self._index_wrapped()) == self._handle_now().keyset_info().primary_key_id:
                return False
            self._write_index(self._index_keyset_bytes())
            return True

    def retire(self, key_ids: set[int]) -> None:
        with self._lock:
            keyset = _keyset_proto(self._handle_now())
            if keyset.primary_key_id in key_ids:
                raise VaultKeyError("the primary key cannot be retired")
            if key_id_of(self._index_wrapped()) in key_ids:
                raise VaultKeyError("the blind-index key is still wrapped by a key to retire: run rotate_keys --resume")
            kept = [key for key in keyset.key if key.key_id not in key_ids]
            del keyset.key[:]
            keyset.key.extend(kept)
            handle = tink.proto_keyset_format.parse(keyset.SerializeToString(), _TOKEN)
            self._write_keyset(handle)
            self._handle, self._kek = handle, None

    def index_prf(self) -> prf.Prf:
        with self._lock:
            self._handle_now()
            if self._prf is None:
                self._prf = (
                    tink.proto_keyset_format.parse(self._index_keyset_bytes(), _TOKEN).primitive(prf.PrfSet).primary()
                )
            return self._prf

    # the blind-index key, wrapped by the KEK ---------------------------------------------------------------
    def _index_wrapped(self) -> bytes:
        self._index_keyset_bytes()  # creates it on first use
        return self.index_path.read_bytes()

    def _index_keyset_bytes(self) -> bytes:
        kek = self._handle_now().primitive(aead.Aead)
        if not self.index_path.exists():
            fresh = tink.new_keyset_handle(prf.prf_key_templates.HMAC_SHA256)
            try:
                _write_secret(
                    self.index_path,
                    kek.encrypt(tink.proto_keyset_format.serialize(fresh, _TOKEN), b"vault-index-key"),
                    create=True,
                )
            except FileExistsError:
                pass
        return kek.decrypt(self.index_path.read_bytes(), b"vault-index-key")

    def _write_index(self, keyset_bytes: bytes) -> None:
        kek = self._handle_now().primitive(aead.Aead)
        _write_secret(self.index_path, kek.encrypt(keyset_bytes, b"vault-index-key"))


class AwsKmsKeyProvider(LocalKeyProvider):
    """The KEK keyset file encrypted under an AWS KMS key (`aws-kms://arn:aws:kms:…`): Tink's KMS envelope."""

    def __init__(self, directory: Path, *, key_uri: str, credentials_path: str | None = None) -> None:
        super().__init__(directory)
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
            if settings.VAULT_KEY_PROVIDER == "aws-kms":
                _provider = AwsKmsKeyProvider(directory, key_uri=settings.VAULT_AWS_KMS_KEY_URI)
            else:
                _provider = LocalKeyProvider(directory, keyset_json=settings.VAULT_KEK_KEYSET)
        return _provider


def key_provider_reset() -> None:
    """Drop the process's provider so the next call re-reads the settings (tests, after a rotation)."""
    global _provider  # noqa: PLW0603
    with _provider_lock:
        _provider = None
