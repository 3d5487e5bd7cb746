"""Load a trained model from a run directory, safely: nothing in the directory can execute code.

The config is read with yaml.safe_load, the checkpoint with torch.load(weights_only=True), and the
tokenizer from the data directory the run trained on (tokenizer.json, plain JSON).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from lmlab.errors import DataError


def load_config(run_dir: str | Path) -> dict:
    """The run's resolved config (config.yaml), read without executing anything."""
    import yaml

    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise DataError(f"run dir {run_dir}: no config.yaml, expected a run directory written by lmlab-train")
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise DataError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model"), dict):
        raise DataError(f"{path}: not an lmlab run config (no model section)")
    return cfg


def load_state(checkpoint: str | Path, map_location: str = "cpu", key: bytes | None = None) -> dict:
    """A Lightning checkpoint's dict, loaded with weights_only=True; a damaged file is one DataError line.
    An encrypted checkpoint (lmlab.train.checkpoint_io) is decrypted in memory with `key`, by default
    the key of the run's data (run_key); with a key given, a checkpoint that is not encrypted is refused."""
    import io

    from lmlab import crypto

    try:
        with open(checkpoint, "rb") as f:
            encrypted = crypto.is_encrypted(f.read(len(crypto.MAGIC)))
        if encrypted or key is not None:
            key = key if key is not None else run_key(Path(checkpoint).parent.parent, checkpoint)
            return _torch_load(io.BytesIO(crypto.decrypt_file(checkpoint, key, "checkpoint")), checkpoint, map_location)
    except FileNotFoundError:
        raise DataError(f"checkpoint {checkpoint}: no such file") from None
    return _torch_load(checkpoint, checkpoint, map_location)


def _torch_load(source, checkpoint: str | Path, map_location: str) -> dict:
    import pickle
    import zipfile

    import torch

    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of a file it then refuses
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(source, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"checkpoint {checkpoint}: cannot be loaded safely ({first[:200]})") from None


def run_key(run_dir: str | Path, checkpoint: str | Path) -> bytes:
    """The key of a run's encrypted checkpoints: its data's key, found the way the data's manifest says."""
    from lmlab.data.shards import read_manifest, shard_key
    from lmlab.errors import LmlabError

    try:
        key = shard_key(read_manifest(load_config(run_dir)["data"]["dir"]))
    except LmlabError as err:  # a missing key (ConfigError), a missing data dir (DataError): said of this file
        raise type(err)(f"checkpoint {checkpoint}: encrypted; {err}") from None
    if key is None:
        raise DataError(f"checkpoint {checkpoint}: encrypted, but its run's data is not, so no key is configured")
    return key


def load_model(run_dir: str | Path, device: str = "cpu"):
    """(model, tokenizer, cfg) of a run: its GPT with the weights of checkpoints/last.ckpt, in eval mode."""
    from tokenizers import Tokenizer

    from lmlab.models.family import build_model
    from lmlab.runs.record import RunRecord

    cfg = load_config(run_dir)
    rec = RunRecord(run_dir)
    if not isinstance(cfg.get("data"), dict) or "dir" not in cfg["data"]:
        raise DataError(f"run dir {run_dir}: its config.yaml names no data.dir, so its tokenizer is unknown")
    tokenizer_path = Path(cfg["data"]["dir"]) / "tokenizer.json"
    if not tokenizer_path.is_file():
        raise DataError(f"run dir {run_dir}: its data dir {cfg['data']['dir']} has no tokenizer.json")
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    plan = rec.plan() or {}
    vocab_size = int(plan.get("vocab_size") or tokenizer.get_vocab_size())
    model = build_model(cfg["model"], vocab_size)
    state = load_state(rec.checkpoint, device)["state_dict"]
    weights = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    # a compiled model's state dict carries an _orig_mod. prefix
    weights = {k.replace("_orig_mod.", ""): v for k, v in weights.items()}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if [k for k in missing if not k.endswith((".cos", ".sin"))] or unexpected:
        raise DataError(f"checkpoint {rec.checkpoint}: does not match the run's model "
                        f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.to(device).eval(), tokenizer, cfg
