"""Checkpoints encrypted at rest when the run's data is: a Lightning CheckpointIO plugin.

A run whose prepared data has encrypted shards (lmlab-prepare encrypt.key=env:NAME|file:PATH) writes
last.ckpt and previous.ckpt as AES-GCM blobs (lmlab.crypto) with the same key, so that the weights,
which can hold the training text, are as protected as the text. The key is found the way the data's
manifest names it; no record holds it. Loading decrypts in memory, then torch.load(weights_only=True).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from lmlab import crypto
from lmlab.runs.load import load_state


class EncryptedCheckpointIO(TorchCheckpointIO):
    def __init__(self, key: bytes):
        self.key = key

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)  # serialised in memory: the plaintext never reaches the disk
        crypto.encrypt_file(Path(path), buffer.getvalue(), self.key)

    def load_checkpoint(self, path, map_location: Any | None = None, weights_only: bool | None = None) -> dict[str, Any]:
        return load_state(path, "cpu" if map_location is None or callable(map_location) else map_location, self.key)


def checkpoint_plugins(key: bytes | None) -> list:
    """The Trainer plugins that encrypt checkpoints with `key` (none when the data is not encrypted)."""
    return [EncryptedCheckpointIO(key)] if key is not None else []
