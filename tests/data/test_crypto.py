"""lmlab.crypto: AES-256-GCM blobs, keys from the environment or a file, one line for every failure."""

from __future__ import annotations

import base64
import os

import pytest

from lmlab import crypto
from lmlab.errors import ConfigError, DataError

KEY = bytes(range(32))


def test_a_round_trip_hides_the_data_and_gives_it_back(tmp_path):
    data = b"the plaintext " * 100
    blob = crypto.encrypt_bytes(data, KEY)
    assert data[:14] not in blob and crypto.is_encrypted(blob) and len(blob) == len(data) + crypto.OVERHEAD
    assert crypto.encrypt_bytes(data, KEY) != blob  # a fresh nonce each time
    assert crypto.decrypt_bytes(blob, KEY, "x") == data
    crypto.encrypt_file(tmp_path / "f.bin", data, KEY, mode=0o600)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o600
    assert crypto.decrypt_file(tmp_path / "f.bin", KEY) == data


def test_a_wrong_key_a_flipped_byte_a_truncation_and_plaintext_are_one_line_each():
    blob = crypto.encrypt_bytes(b"secret tokens", KEY)
    other = bytes(32)
    with pytest.raises(DataError, match=rf"^ckpt: encrypted with another key \(key id {crypto.key_id(KEY)}\), "
                                        rf"the given key has id {crypto.key_id(other)}$"):
        crypto.decrypt_bytes(blob, other, "ckpt")
    flipped = bytearray(blob)
    flipped[-5] ^= 1
    with pytest.raises(DataError, match=r"^ckpt: tampered or corrupt \(authentication failed\)$"):
        crypto.decrypt_bytes(bytes(flipped), KEY, "ckpt")
    with pytest.raises(DataError, match=r"^ckpt: truncated"):
        crypto.decrypt_bytes(blob[:30], KEY, "ckpt")
    with pytest.raises(DataError, match=r"^ckpt: not encrypted by lmlab"):
        crypto.decrypt_bytes(b"plain text", KEY, "ckpt")


def test_keys_come_from_the_environment_or_a_file_as_hex_or_base64(tmp_path, monkeypatch):
    assert crypto.load_key(None) is None and crypto.load_key("") is None
    monkeypatch.setenv("LMLAB_TEST_KEY", KEY.hex())
    assert crypto.load_key("env:LMLAB_TEST_KEY") == KEY
    (tmp_path / "key").write_text(base64.b64encode(KEY).decode() + "\n")
    assert crypto.load_key(f"file:{tmp_path / 'key'}") == KEY


@pytest.mark.parametrize("source,env,message", [
    ("env:LMLAB_NO_SUCH_KEY", None, "environment variable LMLAB_NO_SUCH_KEY is not set"),
    ("env:LMLAB_TEST_KEY", "abcd", "not a 32-byte key; expected 64 hex digits or base64 of 32 bytes"),
    ("file:/nonexistent/key", None, "cannot read the key file (No such file or directory)"),
    ("LMLAB_KEY", None, "expected 'env:NAME' or 'file:PATH'"),
    ("00" * 32, None, "expected 'env:NAME' or 'file:PATH' (never the key itself in a config)"),
])
def test_a_missing_or_malformed_key_is_one_line_without_the_value(source, env, message, monkeypatch):
    if env is not None:
        monkeypatch.setenv("LMLAB_TEST_KEY", env)
    with pytest.raises(ConfigError) as err:
        crypto.load_key(source)
    assert message in str(err.value) and "\n" not in str(err.value)
    secret = env or (None if ":" in source else source)  # what the user may have put where a key belongs
    assert secret is None or secret not in str(err.value)


def test_the_key_id_is_a_fingerprint_not_the_key():
    assert crypto.key_id(KEY) != crypto.key_id(os.urandom(32)) and KEY.hex()[:16] != crypto.key_id(KEY)
