"""The prepare pipeline: source -> clean -> dedup -> PII -> split -> tokenizer -> shards -> card.

Each stage counts what it keeps and drops (the data card); its text output is kept under
stages/<n>-<stage>.parquet only when `keep_stages` asks. The corpus is built in
`<root>/<name>.partial` and renamed to `<root>/<name>` only when complete, under a lock, so an interrupted or concurrent prepare never leaves a directory that
loads as valid. The same config lands in the same directory and is skipped when already done.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from lmlab.data.pipeline import HASHED_KEYS, OWNER_ONLY_DIR, OWNER_ONLY_FILE, build_corpus, check_config
from lmlab.data.shards import MANIFEST
from lmlab.errors import ConfigError, DataError

log = logging.getLogger("lmlab.data")

from lmlab import CONF_DIR  # noqa: E402
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def compose_prepare_config(overrides: Sequence[str] = ()):
    """conf/prepare.yaml composed with Hydra's compose API, even from inside another Hydra app."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if not (CONF_DIR / "prepare.yaml").is_file():
        raise ConfigError(f"config dir {CONF_DIR}: no prepare.yaml, expected lmlab's conf/ next to the package")
    outer = GlobalHydra.instance().hydra  # set when called from inside lmlab-train
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose(config_name="prepare", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as err:
        from lmlab.config import composition_error_line

        raise ConfigError(f"prepare config: {composition_error_line(err)}") from None
    finally:
        gh = GlobalHydra.instance()  # initialize_config_dir swaps in a new instance on exit
        gh.clear()
        if outer is not None:
            gh.initialize(outer)


def prepare_preset(name: str, data_dir_root: str | os.PathLike, overrides: Sequence[str] = ()) -> Path:
    """Prepare the preset `name` (conf/preset/<name>.yaml) into data_dir_root/<name>; skip if done."""
    presets = sorted(p.stem for p in (CONF_DIR / "preset").glob("*.yaml"))
    if name not in presets:
        raise ConfigError(f"data preset: got {name!r}, expected one of {', '.join(presets)}")
    cfg = compose_prepare_config([f"preset={name}", f"data_dir={Path(data_dir_root).resolve()}", *overrides])
    return run_prepare(cfg)


def config_hash(cfg: Mapping) -> str:
    hashed = {k: cfg.get(k) for k in HASHED_KEYS}
    if (cfg.get("encrypt") or {}).get("key"):  # encrypted shards are other files (the key itself is not hashed)
        hashed["encrypted"] = True
    return hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()


def run_prepare(cfg) -> Path:
    """Run the whole pipeline for a composed prepare config; return the prepared directory."""
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(cfg, resolve=True) if not isinstance(cfg, dict) else cfg
    name = str(plain.get("name"))
    if not NAME_RE.match(name):
        raise ConfigError(f"name: got {name!r}, expected letters, digits, '.', '_' or '-' (a directory name)")
    check_config(plain)
    root = Path(plain["data_dir"]).expanduser().resolve()
    out = root / name
    digest = config_hash(plain)
    root.mkdir(parents=True, exist_ok=True)
    with _lock(root / f".{name}.lock"):
        if _already_prepared(out, digest, bool(plain.get("overwrite"))):
            log.info("prepare %s: already prepared in %s (config %s), skipping", name, out, digest[:8])
            if plain.get("owner_only"):
                _owner_only(out)
            return out
        partial = root / f"{name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        if plain.get("owner_only"):  # before anything is written into it
            os.chmod(partial, OWNER_ONLY_DIR)
        start = time.monotonic()
        build_corpus(plain, digest, partial)
        _replace_dir(partial, out)
        log.info("prepare %s: done in %.1fs -> %s", name, time.monotonic() - start, out)
    return out


def _already_prepared(out: Path, digest: str, overwrite: bool) -> bool:
    if not out.exists():
        return False
    manifest_path = out / MANIFEST
    if not manifest_path.is_file():
        if overwrite:
            return False
        raise DataError(f"data dir {out}: exists but holds no {MANIFEST}, expected a prepared corpus or nothing "
                        "(remove it or set overwrite=true)")
    try:
        found = json.loads(manifest_path.read_text(encoding="utf-8")).get("config_hash")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        if overwrite:
            return False
        raise DataError(f"data dir {out}: {MANIFEST} is unreadable, expected a prepared corpus "
                        "(remove it or set overwrite=true)") from None
    if found == digest:
        return True
    if overwrite:
        return False
    raise ConfigError(f"data dir {out}: already prepared with config {str(found)[:8]}, this config is {digest[:8]}; "
                      "choose another name or set overwrite=true")


def _owner_only(path: Path) -> None:
    """Make an already prepared directory owner-only, as a new one would be."""
    os.chmod(path, OWNER_ONLY_DIR)
    for sub in path.rglob("*"):
        os.chmod(sub, OWNER_ONLY_DIR if sub.is_dir() else OWNER_ONLY_FILE)


def _replace_dir(partial: Path, out: Path) -> None:
    if out.exists():
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
        os.replace(partial, out)
        shutil.rmtree(old)
    else:
        os.replace(partial, out)


@contextmanager
def _lock(path: Path):
    """One prepare per name at a time (several jobs may auto-prepare the same preset)."""
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("prepare: waiting for another process that holds %s", path)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
