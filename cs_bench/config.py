"""Where cs-bench keeps things: data directory and cache directory.

Data is looked for in ``--data-dir``, then ``$CS_BENCH_DATA``, then the per-user cache
(``$CS_BENCH_CACHE/data``, default ``~/.cache/cs-bench/data``). Results of runs and the
training-block arrays are cached under ``$CS_BENCH_CACHE`` (default ``~/.cache/cs-bench``).
"""

import os
from pathlib import Path


def cache_dir():
    """The cache root (created on demand by the users of it)."""
    env = os.environ.get("CS_BENCH_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "cs-bench"


def data_dirs(data_dir=None):
    """Candidate data roots in search order (``--data-dir``, ``$CS_BENCH_DATA``, cache)."""
    out = []
    if data_dir:
        out.append(Path(data_dir).expanduser())
    env = os.environ.get("CS_BENCH_DATA")
    if env:
        out.append(Path(env).expanduser())
    out.append(cache_dir() / "data")
    return out
