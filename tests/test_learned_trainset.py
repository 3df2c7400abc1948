"""Training blocks: stratified sampling, caching, held-out validation, Qinit."""

import numpy as np
import pytest

from cs_bench.errors import CSBenchError
from cs_bench.learned import trainset as ts
from cs_bench.learned.qinit import qinit, second_moment
from cs_bench.sensing import make_phi


def test_qinit_solves_the_least_squares_problem():
    rng = np.random.default_rng(0)
    X = ts.synthetic_blocks(400, rng).astype(np.float64)  # 400 blocks as rows
    Phi = make_phi(0.04)  # M = 43 < 400: Y has full column rank
    Y = X @ Phi.T
    Q = qinit(second_moment(X), Phi)
    assert Q.shape == (1089, 43)
    ref = np.linalg.lstsq(Y, X, rcond=None)[0].T  # argmin ||Q Y^T - X^T||
    assert np.allclose(Q, ref, atol=1e-6 * np.abs(ref).max())
    # the normal equations of Eq. 12: (Q Y - X) Y^T = 0
    assert np.abs((Y @ Q.T - X).T @ Y).max() < 1e-6 * np.abs(X.T @ Y).max()


def test_qinit_with_fewer_blocks_than_measurements_is_the_minimum_norm_solution():
    rng = np.random.default_rng(1)
    X = ts.synthetic_blocks(20, rng).astype(np.float64)
    Phi = make_phi(0.04)
    Q = qinit(second_moment(X), Phi)
    Y = X @ Phi.T  # 20 x 43: Y Y^T of Eq. 12 is singular
    assert np.allclose(Q.T, np.linalg.pinv(Y) @ X, atol=1e-6)


def test_area_stratified_counts():
    counts = ts._split_counts([100, 300, 600], 10)
    assert counts.tolist() == [1, 3, 6]
    counts = ts._split_counts([1, 1, 1], 10)
    assert counts.sum() == 10 and sorted(counts.tolist()) == [3, 3, 4]


def test_sampled_blocks_are_windows_of_their_images_in_proportion():
    rng = np.random.default_rng(2)
    small = rng.random((40, 40))  # 8 x 8 = 64 positions
    big = rng.random((65, 72))  # 33 x 40 = 1320 positions
    out = ts._sample_blocks([small, big], 1384 // 4, np.random.default_rng(3))
    win = np.lib.stride_tricks.sliding_window_view
    small_w = {w.tobytes() for w in win(small, (33, 33)).reshape(-1, 1089).astype(np.float32)}
    big_w = {w.tobytes() for w in win(big, (33, 33)).reshape(-1, 1089).astype(np.float32)}
    # 346 blocks in proportion 64 : 1320 positions -> 16 from the small image, 330 from the big
    assert all(b.tobytes() in small_w for b in out[:16])
    assert all(b.tobytes() in big_w for b in out[16:])
    assert len({b.tobytes() for b in out}) == len(out)  # positions drawn without replacement


def test_synthetic_recipe_is_deterministic_and_cached_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path))
    r = ts.Recipe(source="synthetic", n_blocks=100, n_val=20, seed=5)
    a = ts.load(r)
    files = sorted(p.name for p in (tmp_path / "trainsets").iterdir())
    assert len(files) == 4 and all(r.key() in f for f in files)
    assert not any(f.endswith(".tmp") for f in files)
    b = ts.load(r)  # from the cache
    assert np.array_equal(a.train, b.train) and np.array_equal(a.val, b.val)
    assert np.allclose(a.moment, second_moment(a.train))
    assert a.train.dtype == np.float32 and 0 <= a.train.min() and a.train.max() <= 1
    assert not np.array_equal(ts.load(ts.Recipe(source="synthetic", n_blocks=100, n_val=20,
                                                 seed=6)).train, a.train)
    # a damaged cache file is rebuilt, not trusted
    p = ts.paths(r)["train"]
    p.write_bytes(b"garbage")
    assert np.array_equal(ts.load(r).train, a.train)
    assert r.key() != ts.Recipe(source="synthetic", n_blocks=101, n_val=20, seed=5).key()


def test_recipe_checks():
    with pytest.raises(CSBenchError, match="source"):
        ts.Recipe(source="set11").check()
    with pytest.raises(CSBenchError, match="at least one"):
        ts.Recipe(n_blocks=0).check()


def test_t91_blocks_hold_out_whole_images(tmp_path, monkeypatch, data_dir):
    if not (data_dir / "T91").is_dir():
        pytest.skip("T91 not available (set CS_BENCH_DATA)")
    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path))
    r = ts.Recipe(source="t91", n_blocks=910, n_val=100, val_images=5, seed=0)
    a = ts.load(r)
    assert a.train.shape == (910, 1089) and a.val.shape == (100, 1089)
    assert len(a.val_names) == 5 and all(n.startswith("t") for n in a.val_names)
    assert 0 <= a.train.min() and a.train.max() <= 1
    # different images: no validation block is also a training block
    train_set = {b.tobytes() for b in a.train}
    assert not any(b.tobytes() in train_set for b in a.val if b.std() > 0)
    assert np.array_equal(ts.build(r).train, a.train)  # deterministic
    assert ts.load(r).val_names == a.val_names  # recorded with the cache
