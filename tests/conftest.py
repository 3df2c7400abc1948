import os

# before numpy loads OpenBLAS: its threads fight torch's on a 2-core machine (QR 22 s vs 0.7 s)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session gets its own cache; data comes from CS_BENCH_DATA if set."""
    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    if not os.environ.get("CS_BENCH_DATA") and SHARED.is_dir():
        monkeypatch.setenv("CS_BENCH_DATA", str(SHARED))


@pytest.fixture
def data_dir():
    d = os.environ.get("CS_BENCH_DATA") or (str(SHARED) if SHARED.is_dir() else None)
    if not d or not Path(d, "Set11").is_dir():
        pytest.skip("benchmark images not available (set CS_BENCH_DATA)")
    return Path(d)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
