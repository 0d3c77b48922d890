"""Archive objects encrypted at rest with the vault's keys: each object gets a fresh Tink streaming-AEAD data
key, wrapped by the vault's KEK (its key id goes into the manifest). The associated data binds a ciphertext to
its data kind and period, so one object cannot be passed off as another."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from vault import keys


@dataclass(frozen=True)
class Sealed:
    ciphertext: bytes
    wrapped_key: bytes
    kek_key_id: int
    sha256_plaintext: str
    sha256_object: str


class SealBroken(Exception):
    """The object does not open: tampered, truncated, or sealed for another kind or period."""


def seal(plaintext: bytes, *, context: str) -> Sealed:
    primitive, wrapped, kek_key_id = keys.streaming_dek_new(keys.key_provider(), context=context.encode())
    sink = _KeepOpen()
    with primitive.new_encrypting_stream(sink, context.encode()) as stream:
        stream.write(plaintext)
    ciphertext = sink.getvalue()
    return Sealed(
        ciphertext=ciphertext,
        wrapped_key=wrapped,
        kek_key_id=kek_key_id,
        sha256_plaintext=hashlib.sha256(plaintext).hexdigest(),
        sha256_object=hashlib.sha256(ciphertext).hexdigest(),
    )


def unseal(ciphertext: bytes, *, wrapped_key: bytes, context: str) -> bytes:
    try:
        primitive = keys.streaming_dek_unwrap(keys.key_provider(), wrapped_key, context=context.encode())
        with primitive.new_decrypting_stream(io.BytesIO(ciphertext), context.encode()) as stream:
            return stream.read()
    except Exception as error:  # tink.TinkError, VaultKeyError: whatever broke, it does not open
        raise SealBroken(f"the archive object does not decrypt: {type(error).__name__}") from None


class _KeepOpen(io.BytesIO):
    # Tink closes its destination with the encrypting stream; the bytes are read after.
    def close(self) -> None:
        pass
