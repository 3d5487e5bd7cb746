"""Token shards on disk: flat little-endian uint16/uint32 files, one manifest.json that describes them.

A directory is prepared when, and only when, it holds manifest.json (written last). Loading checks
every shard's size against the manifest, and its sha256 on request, so a truncated or corrupt shard
is an error that names it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from lmlab.errors import DataError

MANIFEST = "manifest.json"
REQUIRED_KEYS = ("vocab_size", "dtype", "splits", "tokenizer_sha256", "eot_id")


def dtype_for_vocab(vocab_size: int) -> str:
    return "uint16" if vocab_size <= 2**16 else "uint32"


class ShardWriter:
    """Appends token ids for one split, starting a new shard file every `shard_tokens` tokens."""

    def __init__(self, out_dir: Path, split: str, dtype: str, shard_tokens: int):
        self.out_dir, self.split, self.dtype, self.shard_tokens = Path(out_dir), split, np.dtype(dtype), shard_tokens
        self.shards: list[dict] = []
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
        name = f"{self.split}-{len(self.shards):05d}.bin"
        self._path = self.out_dir / name
        self._file = open(self._path.with_suffix(".bin.tmp"), "wb")
        self._hash, self._count = hashlib.sha256(), 0

    def _finish(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._path.with_suffix(".bin.tmp"), self._path)
        self.shards.append({"file": self._path.name, "tokens": self._count, "sha256": self._hash.hexdigest()})
        self._file = None


def write_manifest(out_dir: Path, manifest: dict) -> None:
    """Written last and atomically: its presence is what marks the directory as prepared."""
    tmp = Path(out_dir) / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, Path(out_dir) / MANIFEST)


def read_manifest(data_dir: str | os.PathLike) -> dict:
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        raise DataError(f"data dir {data_dir}: no {MANIFEST}, expected a prepared corpus (run lmlab-prepare)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"manifest {path}: not valid JSON ({err})") from None
    missing = [k for k in REQUIRED_KEYS if k not in manifest]
    if missing:
        raise DataError(f"manifest {path}: missing keys {missing}, expected {list(REQUIRED_KEYS)}")
    return manifest


def open_split(data_dir: str | os.PathLike, split: str, verify: bool = False) -> list[np.ndarray]:
    """Read-only memmaps of a split's shards, in order; `verify` also checks every sha256."""
    manifest = read_manifest(data_dir)
    splits = manifest["splits"]
    if split not in splits:
        raise DataError(f"data dir {data_dir}: no split {split!r}, expected one of {', '.join(splits)}")
    dtype = np.dtype(manifest["dtype"]).newbyteorder("<")
    arrays = []
    for shard in splits[split]["shards"]:
        path = Path(data_dir) / shard["file"]
        check_shard(path, shard, dtype, verify)
        arrays.append(np.memmap(path, dtype=dtype, mode="r"))
    if not arrays:
        raise DataError(f"data dir {data_dir}: split {split!r} has no shards, expected at least one")
    return arrays


def check_shard(path: Path, shard: dict, dtype: np.dtype, verify: bool) -> None:
    if not path.is_file():
        raise DataError(f"shard {path}: missing, expected {shard['tokens']} tokens")
    expected = shard["tokens"] * dtype.itemsize
    size = path.stat().st_size
    if size != expected:
        state = "truncated" if size < expected else "too long"
        raise DataError(f"shard {path}: {state}, {size} bytes, expected {expected}")
    if verify:
        digest = file_sha256(path)
        if digest != shard["sha256"]:
            raise DataError(f"shard {path}: corrupt, sha256 {digest[:12]}..., expected {shard['sha256'][:12]}...")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
