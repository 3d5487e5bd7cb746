"""Token shards on disk: flat little-endian uint16/uint32 files, one manifest.json that describes them.

A directory is prepared when, and only when, it holds manifest.json (written last). Loading checks every
shard's size against the manifest and, by default, its sha256 and that its token ids are below the
vocabulary size, so a truncated, corrupt or mismatched shard is one error that names it. The full pass
runs once per shard file: a stamp keyed by (path, size, mtime_ns, expected sha256) in this process and in
`$LMLAB_CACHE_DIR` (default ~/.cache/lmlab) makes later loads read only the file's metadata. A data
directory is never written to when loading, so a read-only one works.

Encrypted shards (manifest "encryption") are AES-GCM blobs (lmlab.crypto), decrypted into memory at load;
the authentication tag, the plaintext sha256 and the id range are checked on every load.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from lmlab import crypto
from lmlab.errors import DataError
from lmlab.io import cache_dir, atomic_path, dumps, read_json, write_json

MANIFEST = "manifest.json"
REQUIRED_KEYS = ("vocab_size", "dtype", "splits", "tokenizer_sha256", "eot_id")
STAMPS_FILE = "verified_shards.json"
MAX_STAMPS = 10000
_BLOCK = 1 << 20  # a multiple of every token size
_verified: dict[str, int] = {}  # stamp -> largest token id, for this process


def dtype_for_vocab(vocab_size: int) -> str:
    return "uint16" if vocab_size <= 2**16 else "uint32"


class ShardWriter:
    """Appends token ids for one split, starting a new shard file every `shard_tokens` tokens.

    In the clear a shard streams to a temporary file renamed when full; with a `key` it is held in
    memory and written encrypted, so its plaintext never reaches the disk."""

    def __init__(self, out_dir: Path, split: str, dtype: str, shard_tokens: int,
                 key: bytes | None = None, mode: int | None = None):
        self.out_dir, self.split, self.dtype, self.shard_tokens = Path(out_dir), split, np.dtype(dtype), shard_tokens
        self.key, self.mode = key, mode
        self.shards: list[dict] = []
        self._atomic = None
        self._file = None
        self._hash = None
        self._count = 0

    def write(self, ids: np.ndarray) -> None:
        ids = np.ascontiguousarray(ids, dtype=self.dtype.newbyteorder("<"))
        while ids.size:
            if self._file is None:
                self._open()
            take = min(ids.size, self.shard_tokens - self._count)
            chunk = ids[:take].tobytes()
            self._file.write(chunk)
            self._hash.update(chunk)
            self._count += take
            ids = ids[take:]
            if self._count == self.shard_tokens:
                self._finish()

    def close(self) -> list[dict]:
        if self._file is not None:
            self._finish()
        return self.shards

    def _open(self) -> None:
        self._path = self.out_dir / f"{self.split}-{len(self.shards):05d}.bin"
        if self.key is None:
            self._atomic = atomic_path(self._path, self.mode)
            self._file = open(self._atomic.__enter__(), "wb")
        else:
            self._file = _Buffer()
        self._hash, self._count = hashlib.sha256(), 0

    def _finish(self) -> None:
        if self.key is None:
            self._file.close()
            self._atomic.__exit__(None, None, None)  # fsync and rename
        else:
            crypto.encrypt_file(self._path, bytes(self._file), self.key, self.mode)
        self.shards.append({"file": self._path.name, "tokens": self._count, "sha256": self._hash.hexdigest()})
        self._file = self._atomic = None


class _Buffer(bytearray):
    def write(self, chunk: bytes) -> None:
        self.extend(chunk)


def write_manifest(out_dir: Path, manifest: dict, mode: int | None = None) -> None:
    """Written last and atomically: its presence is what marks the directory as prepared."""
    write_json(Path(out_dir) / MANIFEST, manifest, mode)


def read_manifest(data_dir: str | os.PathLike) -> dict:
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        raise DataError(f"data dir {data_dir}: no {MANIFEST}, expected a prepared corpus (run lmlab-prepare)")
    manifest = read_json(path)
    if not isinstance(manifest, dict):
        raise DataError(f"manifest {path}: not a JSON object, expected keys {list(REQUIRED_KEYS)}")
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise DataError(f"manifest {path}: missing keys {missing}, expected {list(REQUIRED_KEYS)}")
    return manifest


def open_split(data_dir: str | os.PathLike, split: str, verify: bool = True) -> list[np.ndarray]:
    """A split's shards as read-only arrays, in order (memmaps, or in memory when encrypted).

    Every shard's size is checked; `verify` (the default) also checks its sha256 and token ids."""
    manifest = read_manifest(data_dir)
    splits = manifest["splits"]
    if split not in splits:
        raise DataError(f"data dir {data_dir}: no split {split!r}, expected one of {', '.join(splits)}")
    dtype = np.dtype(manifest["dtype"]).newbyteorder("<")
    vocab = int(manifest["vocab_size"])
    key = shard_key(manifest)
    arrays = []
    for shard in splits[split]["shards"]:
        path = Path(data_dir) / shard["file"]
        if key is not None:
            arrays.append(_decrypted(path, shard, dtype, key, vocab))
            continue
        check_shard(path, shard, dtype)
        if verify:
            verify_shard(path, shard, dtype, vocab)
        arrays.append(np.memmap(path, dtype=dtype, mode="r"))
    if not arrays:
        raise DataError(f"data dir {data_dir}: split {split!r} has no shards, expected at least one")
    return arrays


def shard_key(manifest: dict) -> bytes | None:
    """The key of encrypted shards, found the way the manifest says (never stored in it)."""
    enc = manifest.get("encryption")
    if not enc:
        return None
    key = crypto.load_key(enc.get("key"))
    if crypto.key_id(key) != enc.get("key_id"):
        raise DataError(f"encryption key {enc.get('key')}: key id {crypto.key_id(key)} is not the key the shards "
                        f"were encrypted with (key id {enc.get('key_id')})")
    return key


def check_shard(path: Path, shard: dict, dtype: np.dtype) -> None:
    if not path.is_file():
        raise DataError(f"shard {path}: missing, expected {shard['tokens']} tokens")
    expected = shard["tokens"] * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        state = "truncated" if size < expected else "too long"
        raise DataError(f"shard {path}: {state}, {size} bytes, expected {expected}")


def verify_shard(path: Path, shard: dict, dtype: np.dtype, vocab: int) -> None:
    """sha256 against the manifest and every id below `vocab`; the full pass only once per file version."""
    st = path.stat()
    stamp = dumps([str(path.resolve()), st.st_size, st.st_mtime_ns, shard["sha256"]])
    max_id = _verified.get(stamp)
    if max_id is None:
        max_id = _read_stamps().get(stamp)
    if max_id is None:
        digest, max_id = _hash_and_max(path, dtype)
        if digest != shard["sha256"]:
            raise DataError(f"shard {path}: corrupt, sha256 {digest[:12]}..., expected {shard['sha256'][:12]}...")
        _save_stamp(stamp, max_id)
    _verified[stamp] = max_id
    _check_ids(path, max_id, vocab)


def _check_ids(path: Path, max_id: int, vocab: int) -> None:
    if max_id >= vocab:
        raise DataError(f"shard {path}: token id {max_id} out of range, expected ids below the vocabulary size {vocab}")


def _hash_and_max(path: Path, dtype: np.dtype) -> tuple[str, int]:
    h, max_id = hashlib.sha256(), -1
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
            max_id = max(max_id, int(np.frombuffer(block, dtype=dtype).max(initial=0)))
    return h.hexdigest(), max_id


def _decrypted(path: Path, shard: dict, dtype: np.dtype, key: bytes, vocab: int) -> np.ndarray:
    data = crypto.decrypt_file(path, key, what="shard")
    if len(data) != shard["tokens"] * dtype.itemsize:
        raise DataError(f"shard {path}: holds {len(data)} bytes, expected {shard['tokens'] * dtype.itemsize}")
    if hashlib.sha256(data).hexdigest() != shard["sha256"]:
        raise DataError(f"shard {path}: decrypts to other tokens than the manifest's sha256 {shard['sha256'][:12]}...")
    array = np.frombuffer(data, dtype=dtype)
    _check_ids(path, int(array.max(initial=0)), vocab)
    return array


def stamps_path() -> Path:
    return cache_dir() / STAMPS_FILE


def _read_stamps() -> dict:
    try:
        stamps = read_json(stamps_path())
    except (DataError, OSError):  # no cache yet, or an unreadable one: verify again
        return {}
    return stamps if isinstance(stamps, dict) else {}


def _save_stamp(stamp: str, max_id: int) -> None:
    """Best effort: a cache that cannot be written (read-only home) only costs a hash next time."""
    stamps = _read_stamps()
    stamps[stamp] = max_id
    if len(stamps) > MAX_STAMPS:  # keep the newest entries (dicts keep insertion order)
        stamps = dict(list(stamps.items())[-MAX_STAMPS:])
    try:
        write_json(stamps_path(), stamps)
    except OSError:
        pass

