"""The one place lmlab writes and reads its files: atomic writes, strict JSON lines, tables.

Every record lmlab writes goes through `atomic_path` (a temporary file in the same directory,
fsync, rename), so a crash or a full disk leaves either the old file or the new one, never half
of one and never an orphan temporary file. JSON never holds NaN or infinities (they become null),
so every record is valid JSON that any tool can read. This module imports nothing from lmlab but
the errors, so any package may use it without import cycles.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lmlab.errors import DataError

_UMASK = os.umask(0)
os.umask(_UMASK)
TABLE_SUFFIXES = (".parquet", ".csv")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block ends without error, fsync it and rename
    it over `path`. On any error (a full disk included) the temporary file is removed and `path` is
    left as it was. mode: the file's permission bits (default: 0666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, (0o666 & ~_UMASK) if mode is None else mode)  # mkstemp makes 0600
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def cache_dir() -> Path:
    """lmlab's per-user cache ($LMLAB_CACHE_DIR, default ~/.cache/lmlab): stamps and measurements that
    are safe to lose."""
    return Path(os.environ.get("LMLAB_CACHE_DIR", Path.home() / ".cache" / "lmlab"))


def write_atomic(path: str | os.PathLike, data: str | bytes, mode: int | None = None) -> None:
    """Write text or bytes to `path` atomically (see atomic_path)."""
    with atomic_path(path, mode) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")


def finite(obj: Any) -> Any:
    """obj with every NaN or infinite float replaced by None (JSON has no NaN)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalars
        return finite(obj.item())
    return obj


def dumps(obj: Any, **kwargs) -> str:
    """Strict JSON: NaN and infinities become null; anything else unknown becomes its str()."""
    return json.dumps(finite(obj), allow_nan=False, default=str, **kwargs)


def write_json(path: str | os.PathLike, obj: Any, mode: int | None = None) -> None:
    write_atomic(path, dumps(obj, indent=2, sort_keys=True) + "\n", mode)


def read_json(path: str | os.PathLike) -> Any:
    """A JSON file; a missing or corrupt one is one DataError line naming the file."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None


def append_jsonl(path: str | os.PathLike, row: dict) -> None:
    """Append one line; a single write() of a whole line keeps a crash from leaving half a row."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(dumps(row) + "\n")


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Rows of a JSON-lines file (none if it does not exist), dropping a last line cut short by a crash."""
    rows = []
    if not Path(path).exists():
        return rows
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return rows


def write_jsonl(path: str | os.PathLike, rows: list[dict]) -> None:
    write_atomic(path, "".join(dumps(r) + "\n" for r in rows))


def check_table_path(path: str | os.PathLike, what: str = "output") -> str:
    """The table's suffix; anything but .parquet or .csv is one DataError line (checked before work starts)."""
    path = Path(path)
    if path.suffix not in TABLE_SUFFIXES:
        raise DataError(f"{what} {str(path)!r} has suffix {path.suffix!r}; expected .parquet or .csv")
    return path.suffix


def read_table(path: str | os.PathLike):
    """A study table (.parquet or .csv) as a DataFrame; missing, empty or corrupt: one DataError line."""
    import pandas as pd

    path = Path(path)
    suffix = check_table_path(path, "table")
    if not path.is_file():
        raise DataError(f"table {str(path)!r} does not exist; expected a .parquet or .csv file")
    try:
        df = pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"table {str(path)!r} is empty") from None
    except Exception as err:  # pyarrow and the csv parser raise many types for a damaged file
        raise DataError(f"table {str(path)!r} cannot be read: {type(err).__name__}: {err}".splitlines()[0]) from None
    if df.empty:
        raise DataError(f"table {str(path)!r} has no rows")
    return df


def write_table(df, path: str | os.PathLike) -> None:
    """Write a DataFrame by suffix, atomically: a failed write leaves the old table intact."""
    path = Path(path)
    suffix = check_table_path(path)
    with atomic_path(path) as tmp:
        if suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
