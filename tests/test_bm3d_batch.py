"""The batched BM3D (baselines/bm3d_batch.py): tiny inputs, CPU, no optional package."""

import numpy as np
import pytest

from cs_bench.baselines.bm3d_batch import bm3d_batch, dct_matrix, haar_matrix, wavelet_matrix
from cs_bench.baselines.denoisers import get_denoiser
from cs_bench.errors import CSBenchError


def ramps(n=3, seed=0):
    """n 33 x 33 images: smooth ramps with an edge, different per image."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:33, 0:33] / 32.0
    return np.stack([0.2 + 0.5 * (a * x + (1 - a) * y) + 0.2 * (x > 0.5)
                     for a in rng.random(n)])


@pytest.mark.parametrize("name", ["dct", "haar", "bior1.5"])
def test_transforms_invertible_unit_rows(name):
    A = {"dct": dct_matrix(8), "haar": haar_matrix(8), "bior1.5": wavelet_matrix(8)}[name]
    assert np.allclose(np.linalg.norm(A, axis=1), 1.0)
    if name != "bior1.5":
        assert np.allclose(A @ A.T, np.eye(8))  # orthonormal
    assert np.linalg.cond(A) < 10


@pytest.mark.parametrize("profile", ["np", "lc"])
def test_constant_block_stays_constant(profile):
    Z = np.full((2, 33, 33), 0.4)
    out = bm3d_batch(Z, 0.1, profile=profile, search="image")
    assert np.ptp(out) < 1e-6  # constant; the Wiener step shrinks the DC by ~1e-4
    assert abs(out.mean() - 0.4) < 1e-3


@pytest.mark.parametrize("search", ["image", "window"])
def test_noise_is_reduced(search):
    clean = ramps()
    noisy = clean + 0.1 * np.random.default_rng(1).standard_normal(clean.shape)
    out = bm3d_batch(noisy, 0.1, search=search)
    assert np.mean((out - clean) ** 2) < np.mean((noisy - clean) ** 2) / 4


def test_batch_order_does_not_change_output():
    clean = ramps(4)
    noisy = clean + 0.08 * np.random.default_rng(2).standard_normal(clean.shape)
    sigma = np.array([0.05, 0.08, 0.1, 0.2])
    out = bm3d_batch(noisy, sigma, search="image")
    perm = np.array([2, 0, 3, 1])
    out_p = bm3d_batch(noisy[perm], sigma[perm], search="image")
    assert np.allclose(out_p, out[perm], atol=1e-6)
    alone = bm3d_batch(noisy[1], sigma[1], search="image")  # one image, same result
    assert np.allclose(alone, out[1], atol=1e-6)


def test_zero_sigma_returns_input_and_matching_reuse():
    noisy = ramps(2) + 0.05 * np.random.default_rng(3).standard_normal((2, 33, 33))
    out = bm3d_batch(noisy, np.array([0.0, 0.05]))
    assert np.array_equal(out[0], noisy[0])
    d1, m = bm3d_batch(noisy, 0.05, return_matches=True)
    assert np.allclose(bm3d_batch(noisy, 0.05, matches=m), d1)


def test_denoiser_pair_batch_and_bad_input():
    den = get_denoiser("bm3d-batch", profile="lc", search="image")
    X = ramps(2)
    d1, d2 = den.pair_batch(X, X + 1e-4, np.array([0.05, 0.05]))
    assert d1.shape == (2, 33, 33) and np.abs(d2 - d1).max() < 1e-2
    with pytest.raises(CSBenchError, match="at least 8 x 8"):
        bm3d_batch(np.zeros((4, 4)), 0.1)
    with pytest.raises(CSBenchError, match="profile"):
        bm3d_batch(X, 0.1, profile="xx")
