"""Stage 5: a byte-level BPE tokenizer, trained with HF `tokenizers` or loaded from a tokenizer.json."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

from lmlab.errors import ConfigError, DataError


def check_config(cfg: Mapping) -> None:
    """Fail before any work on a tokenizer config that cannot succeed."""
    kind = cfg.get("kind")
    if kind == "file":
        if not Path(str(cfg.get("path"))).is_file():
            raise ConfigError(f"tokenizer.path: {cfg.get('path')} does not exist, expected a tokenizer.json")
        return
    if kind != "train":
        raise ConfigError(f"tokenizer.kind: got {kind!r}, expected 'train' or 'file'")
    specials = list(cfg.get("special_tokens") or [])
    vocab = cfg.get("vocab_size")
    base = 256 + len(specials)
    if not isinstance(vocab, int) or vocab <= base:
        raise ConfigError(f"tokenizer.vocab_size: got {vocab!r}, expected more than {base} "
                          "(256 bytes plus the special tokens)")
    if cfg.get("eot_token") not in specials:
        raise ConfigError(f"tokenizer.eot_token: {cfg.get('eot_token')!r} is not in tokenizer.special_tokens {specials}")


def build_tokenizer(cfg: Mapping, texts: Iterable[str], length: int | None = None):
    """Train (cfg.kind == "train") or load (cfg.kind == "file") the tokenizer described by `cfg`."""
    check_config(cfg)
    if cfg["kind"] == "train":
        tok = train_bpe(texts, int(cfg["vocab_size"]), list(cfg.get("special_tokens") or []),
                        int(cfg.get("min_frequency", 2)), length)
    else:
        tok = load_tokenizer(Path(str(cfg["path"])))
    eot_id(tok, cfg.get("eot_token"))  # fail early when the separator is missing
    return tok


def train_bpe(texts: Iterable[str], vocab_size: int, special_tokens: list[str], min_frequency: int = 2,
              length: int | None = None):
    """A GPT-2-style byte-level BPE: every byte is in the alphabet, so no text is ever unknown."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=special_tokens,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer, length=length)
    return tok


def load_tokenizer(path: Path):
    from tokenizers import Tokenizer

    if not path.is_file():
        raise ConfigError(f"tokenizer.path: {path} does not exist, expected a tokenizer.json")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as err:
        raise DataError(f"tokenizer {path}: not a valid tokenizer.json ({str(err).splitlines()[0]})") from None


def eot_id(tok, eot_token: str | None) -> int:
    """The id of the end-of-text token that separates documents in the token stream."""
    if not eot_token:
        raise ConfigError("tokenizer.eot_token: got nothing, expected a special token such as '<|endoftext|>'")
    tid = tok.token_to_id(eot_token)
    if tid is None:
        raise ConfigError(f"tokenizer.eot_token: {eot_token!r} is not in the tokenizer's vocabulary")
    return tid


def save_tokenizer(tok, path: Path, mode: int | None = None) -> str:
    """Write tokenizer.json and return the sha256 of its bytes."""
    from lmlab.io import write_atomic

    text = tok.to_str()
    write_atomic(path, text, mode)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
