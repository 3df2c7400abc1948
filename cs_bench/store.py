"""The run cache: one SQLite table of result rows, stored as data (nothing is unpickled).

Each result is a row keyed by the sha256 of every input that defines it (method, scope,
params, weights id, ``code`` hash of the method's source, image, ratio, noise, seeds, Phi,
padding, version). The value is a JSON object of numbers and short strings, read back with
``json.loads``: a crafted file in the cache can at worst hold wrong numbers under a key it
cannot know in advance, never run code. The database is in WAL mode, so several runs and the
workers of one run (``--jobs``) read and write it at the same time.

>>> import tempfile, pathlib
>>> s = Store(pathlib.Path(tempfile.mkdtemp()) / "results.sqlite")
>>> k = {"method_name": "a", "ratio": 0.1}
>>> s.put(k, {"psnr": 20.5, "M": 109}); s.get(k)
{'psnr': 20.5, 'M': 109}
>>> s.clear(["a"]), s.get(k)
(1, None)
"""

import hashlib
import json
import math
import sqlite3
from pathlib import Path

from .config import cache_dir
from .errors import CSBenchError

#: the numbers and strings a cached result may hold (anything else is not read back)
VALUE_FIELDS = {"psnr": float, "ssim": float, "seconds": float, "M": int, "device": str,
                "cpu": str}


def default_path():
    """``<cache>/results.sqlite`` (beside, never inside, the training runs' ``runs/``)."""
    return cache_dir() / "results.sqlite"


def key_hash(key):
    """The sha256 of a key dict (canonical JSON, sorted keys)."""
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


class Store:
    """Result rows in SQLite (WAL). Opening checks the file can be used, in one line."""

    def __init__(self, path=None):
        self.path = Path(path) if path else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as con:
                con.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, "
                            "method TEXT NOT NULL, code TEXT, key_json TEXT NOT NULL, "
                            "value_json TEXT NOT NULL)")
        except (OSError, sqlite3.Error) as exc:
            raise CSBenchError(f"cannot use the run cache {self.path}: {_reason(exc, self.path)}; "
                               f"set CS_BENCH_CACHE to a writable folder or pass --no-cache"
                               ) from None

    def _connect(self):
        con = sqlite3.connect(self.path, timeout=60)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        return con

    def get(self, key):
        """The cached value for ``key``, or None (also for a row that is not valid data)."""
        try:
            con = self._connect()
            try:
                row = con.execute("SELECT value_json FROM results WHERE key = ?",
                                  (key_hash(key),)).fetchone()
            finally:
                con.close()
        except sqlite3.Error:
            return None
        return _valid(row[0]) if row else None

    def put(self, key, value):
        """Store ``value`` (finite numbers only) under ``key``; raises ``sqlite3.Error`` or
        ``OSError`` where the disk refuses (the caller keeps the row and says so)."""
        value = {k: value[k] for k in VALUE_FIELDS if k in value}
        con = self._connect()
        try:
            with con:
                con.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?)",
                            (key_hash(key), str(key.get("method_name", "")), key.get("code"),
                             json.dumps(key, sort_keys=True, default=str), json.dumps(value)))
        finally:
            con.close()

    def clear(self, methods=None):
        """Delete every result, or only those of ``methods``; the number deleted."""
        con = self._connect()
        try:
            with con:
                if methods is None:
                    n = con.execute("DELETE FROM results").rowcount
                else:
                    marks = ",".join("?" * len(methods))
                    n = con.execute(f"DELETE FROM results WHERE method IN ({marks})",
                                    list(methods)).rowcount
        finally:
            con.close()
        return n

    def count(self):
        con = self._connect()
        try:
            return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        finally:
            con.close()


def _valid(text):
    """The stored value if it is a JSON object of the expected types, else None."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(value, dict) or set(value) - set(VALUE_FIELDS):
        return None
    for k, v in value.items():
        typ = VALUE_FIELDS[k]
        if typ is float and isinstance(v, (int, float)) and not isinstance(v, bool):
            if math.isnan(v):
                return None
        elif typ is int and isinstance(v, int) and not isinstance(v, bool):
            pass
        elif typ is str and (v is None or isinstance(v, str)):
            pass
        else:
            return None
    return value


def _reason(exc, path=None):
    """The cause in words; SQLite says "disk I/O error" for a full disk, so the free space
    is looked at."""
    if path is not None:
        blocker = next((p for p in Path(path).parents if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            return f"{blocker} is a file, not a folder"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    if path is not None:
        import shutil

        try:
            if shutil.disk_usage(Path(path).parent).free < 1 << 20:
                return "No space left on device"
        except OSError:
            pass
    return str(exc)
