"""Encryption at rest: AES-256-GCM (authenticated) through the `cryptography` package.

    from lmlab import crypto
    key = crypto.load_key("env:LMLAB_KEY")             # or "file:/path/to/key"; None/"" -> None (no encryption)
    blob = crypto.encrypt_bytes(data, key)
    data = crypto.decrypt_bytes(blob, key, where="checkpoint runs/x/last.ckpt")
    crypto.encrypt_file(path, data, key, mode=0o600)   # atomic write through lmlab.io
    data = crypto.decrypt_file(path, key)
    crypto.key_id(key)                                 # a short public fingerprint to record, never the key
    crypto.is_encrypted(blob_or_first_bytes)

A key is 32 bytes written as 64 hex digits or as base64 (`python -c "import os; print(os.urandom(32).hex())"`),
held in an environment variable (`env:NAME`, LMLAB_KEY by convention) or a file (`file:PATH`). The key
itself is never written anywhere; records may hold the key's source string and its key_id.

A blob is MAGIC | key id (8 bytes) | nonce (12 bytes) | ciphertext with its 16-byte tag. The key id lets a
wrong key be told apart from a damaged file: a missing key (ConfigError), a wrong key or a tampered or
truncated blob (DataError) are each one line naming `where`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from pathlib import Path

from lmlab.errors import ConfigError, DataError

MAGIC = b"LMLABAES1\n"
KEY_ENV = "LMLAB_KEY"
KEY_BYTES = 32
_ID_BYTES, _NONCE_BYTES, _TAG_BYTES = 8, 12, 16
HEADER_BYTES = len(MAGIC) + _ID_BYTES + _NONCE_BYTES
OVERHEAD = HEADER_BYTES + _TAG_BYTES
CIPHER = "AES-256-GCM"


def load_key(source: str | None) -> bytes | None:
    """The key named by a config value: None or "" -> None (no encryption); "env:NAME" -> the variable
    NAME; "file:PATH" -> the file's content. Missing or malformed: one ConfigError line (never the value)."""
    if not source:
        return None
    kind, _, where = str(source).partition(":")
    if kind == "env" and where:
        text = os.environ.get(where)
        if text is None:
            raise ConfigError(f"encryption key {source}: environment variable {where} is not set; "
                              f"expected {KEY_BYTES} bytes as 64 hex digits or base64")
    elif kind == "file" and where:
        path = Path(where).expanduser()
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else "not ASCII text"
            raise ConfigError(f"encryption key {source}: cannot read the key file ({reason})") from None
    else:
        # not echoed: a user may have pasted the key itself
        raise ConfigError("encryption key: got a value that is neither 'env:NAME' nor 'file:PATH'; expected "
                          "'env:NAME' or 'file:PATH' (never the key itself in a config)")
    return _parse_key(text.strip(), source)


def _parse_key(text: str, source: str) -> bytes:
    key = None
    if len(text) == 2 * KEY_BYTES:
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = None
    if key is None:
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            key = None
    if key is None or len(key) != KEY_BYTES:
        raise ConfigError(f"encryption key {source}: not a {KEY_BYTES}-byte key; "
                          "expected 64 hex digits or base64 of 32 bytes")
    return key


def key_id(key: bytes) -> str:
    """A public fingerprint of the key (HMAC of a constant), safe to record; it does not reveal the key."""
    return hmac.new(key, b"lmlab key id", hashlib.sha256).hexdigest()[: 2 * _ID_BYTES]


def is_encrypted(blob: bytes) -> bool:
    return blob[: len(MAGIC)] == MAGIC


def encrypt_bytes(data: bytes, key: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(_NONCE_BYTES)  # random 96-bit nonces: safe for far more messages than lmlab writes
    return MAGIC + bytes.fromhex(key_id(key)) + nonce + AESGCM(key).encrypt(nonce, data, MAGIC)


def decrypt_bytes(blob: bytes, key: bytes, where: str) -> bytes:
    """The plaintext of `blob`; not encrypted, a wrong key, or tampered: one DataError line naming `where`."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not is_encrypted(blob):
        raise DataError(f"{where}: not encrypted by lmlab (no {MAGIC.strip().decode()} header)")
    if len(blob) < OVERHEAD:
        raise DataError(f"{where}: truncated, {len(blob)} bytes, expected at least {OVERHEAD}")
    found = blob[len(MAGIC): len(MAGIC) + _ID_BYTES].hex()
    if found != key_id(key):
        raise DataError(f"{where}: encrypted with another key (key id {found}), the given key has id {key_id(key)}")
    nonce = blob[len(MAGIC) + _ID_BYTES: HEADER_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, blob[HEADER_BYTES:], MAGIC)
    except InvalidTag:
        raise DataError(f"{where}: tampered or corrupt (authentication failed)") from None


def encrypt_file(path: str | os.PathLike, data: bytes, key: bytes, mode: int | None = None) -> None:
    from lmlab.io import write_atomic

    write_atomic(path, encrypt_bytes(data, key), mode)


def decrypt_file(path: str | os.PathLike, key: bytes, what: str = "file") -> bytes:
    try:
        blob = Path(path).read_bytes()
    except FileNotFoundError:
        raise DataError(f"{what} {path}: missing") from None
    return decrypt_bytes(blob, key, f"{what} {path}")
