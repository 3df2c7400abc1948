"""Tests of ista-wavelet / fista-wavelet (baselines/wavelet_ista.py, baselines/wavelet_ops.py)."""

import numpy as np
import pytest

from cs_bench.baselines.wavelet_ista import (
    TUNED,
    objective,
    solve_blocks,
    step_size,
    tuned_settings,
)
from cs_bench.baselines.wavelet_ops import BlockWavelet, ImageWavelet, orthonormal_level
from cs_bench.errors import CSBenchError
from cs_bench.metrics import psnr
from cs_bench.problem import Problem
from cs_bench.registry import get_method, list_methods
from cs_bench.sensing import make_phi

METHODS = ("ista-wavelet", "fista-wavelet")


def natural(size=66):
    """A crop of scikit-image's camera man, on the [0, 1] scale."""
    import skimage.data

    return skimage.data.camera()[100:100 + size, 200:200 + size] / 255.0


def sparse_blocks(W, k, n, rng):
    """n blocks x = W^T s, s with k nonzero detail coefficients (and a free coarse band)."""
    S = np.zeros((n, W.block**2))
    details = np.flatnonzero(~W.lowpass)
    for i in range(n):
        idx = rng.choice(details, k, replace=False)
        S[i, idx] = rng.choice([-1.0, 1.0], k) * rng.uniform(0.5, 1.0, k)
    S[:, W.lowpass] = rng.uniform(0.0, 3.0, (n, int(W.lowpass.sum())))
    return W.adjoint(S), S


# -- the operators ---------------------------------------------------------------------------
@pytest.mark.parametrize("wavelet,levels", [("haar", 4), ("db2", 3), ("db4", 5), ("sym8", 2)])
def test_block_operator_is_orthogonal(wavelet, levels):
    W = BlockWavelet(wavelet, levels)
    M = W.matrix()
    assert M.shape == (1089, 1089)
    assert np.abs(M @ M.T - np.eye(1089)).max() < 1e-10  # W W^T = I
    assert np.abs(M.T @ M - np.eye(1089)).max() < 1e-10  # W^T W = I
    X = np.random.default_rng(0).random((5, 1089))
    assert np.allclose(W.forward(X), X @ M.T)  # the batched products are that matrix
    assert np.allclose(W.adjoint(W.forward(X)), X)


@pytest.mark.parametrize("wavelet", ["haar", "db2", "db4"])
def test_flat_block_has_no_detail_coefficients(wavelet):
    """The constant lies in the coarse band at every level: thresholding keeps a flat block."""
    W = BlockWavelet(wavelet, 4)
    C = W.forward(np.full((1, 1089), 0.7))[0]
    assert np.abs(C[~W.lowpass]).max() < 1e-12
    assert W.lowpass.sum() == 9  # 33 -> 17 -> 9 -> 5 -> 3: a 3 x 3 coarse square


def test_haar_level_on_odd_length_is_haar_with_the_last_sample_passed_on():
    s = 1 / np.sqrt(2)
    expected = np.array([[s, s, 0, 0, 0], [0, 0, s, s, 0], [0, 0, 0, 0, 1],
                         [s, -s, 0, 0, 0], [0, 0, s, -s, 0]])
    assert np.allclose(orthonormal_level(5, "haar", np.ones(5)), expected)


def test_db2_interior_atoms_are_pywavelets_atoms():
    import pywt

    Q = orthonormal_level(33, "db2", np.ones(33))
    cA, cD = pywt.dwt(np.eye(33), "db2", mode="periodization", axis=0)
    assert np.allclose(Q[3:14], cA[3:14]) and np.allclose(Q[20:30], cD[3:13])


def test_image_operator_is_orthogonal():
    W = ImageWavelet((66, 99), "db4", levels=3)
    assert W.ext_shape == (72, 104)
    rng = np.random.default_rng(1)
    x, c = rng.standard_normal(W.ext_shape), rng.standard_normal(W.ext_shape)
    Wx = W.forward(x)
    assert Wx.shape == W.ext_shape
    assert np.isclose(np.vdot(Wx, c), np.vdot(x, W.adjoint(c)))  # adjoint
    assert np.isclose(np.linalg.norm(Wx), np.linalg.norm(x))  # isometry
    assert np.allclose(W.adjoint(Wx), x)  # W^T W = I
    assert W.lowpass.sum() == (72 // 8) * (104 // 8)


def test_step_size_follows_a_user_phi():
    Phi = make_phi(0.25)
    assert np.isclose(step_size(Phi), 1.0)
    assert np.isclose(step_size(3.0 * Phi), 1 / 9)


# -- the solvers ----------------------------------------------------------------------------
@pytest.mark.parametrize("fista,iters", [(False, 200), (True, 100)])
def test_recovers_a_block_sparse_in_w(fista, iters):
    rng = np.random.default_rng(3)
    W = BlockWavelet("db2", 3)
    X, S = sparse_blocks(W, k=20, n=2, rng=rng)
    Phi = make_phi(0.25)  # 272 measurements for 20 details + 25 coarse coefficients
    Y = X @ Phi.T
    Xr = solve_blocks(Y, Phi, 1e-2, iters, W, fista=fista)
    assert np.linalg.norm(Xr - X) / np.linalg.norm(X) < 0.05
    assert np.linalg.norm(Y @ Phi - X) / np.linalg.norm(X) > 0.5  # backprojection is far off
    Sr = W.forward(Xr)
    for i in range(2):  # the support is found
        top = np.argsort(-np.abs(np.where(W.lowpass, 0, Sr[i])))[:20]
        assert set(top) == set(np.flatnonzero(np.where(W.lowpass, 0, S[i])))


def test_a_dense_block_is_not_recovered():
    """Control for the test above: the same setting fails without sparsity."""
    W = BlockWavelet("db2", 3)
    X = np.random.default_rng(4).standard_normal((2, 1089))
    Phi = make_phi(0.25)
    Xr = solve_blocks(X @ Phi.T, Phi, 1e-2, 100, W, fista=True)
    assert np.linalg.norm(Xr - X) / np.linalg.norm(X) > 0.5


def test_fista_reaches_a_lower_objective_than_ista():
    p = Problem.from_image(natural(66), 0.25)
    W, tau = BlockWavelet("db2", 3), 1e-2
    F0 = objective(np.zeros((p.n_blocks, 1089)), p.Phi, p.y, W, tau)
    for iters in (10, 40):
        Fi = objective(solve_blocks(p.y, p.Phi, tau, iters, W, fista=False), p.Phi, p.y, W, tau)
        Ff = objective(solve_blocks(p.y, p.Phi, tau, iters, W, fista=True), p.Phi, p.y, W, tau)
        assert Ff < Fi < F0


def test_ista_objective_never_increases():
    p = Problem.from_image(natural(33), 0.1)
    W, tau = BlockWavelet("haar", 2), 3e-3
    values = []
    solve_blocks(p.y, p.Phi, tau, 30, W,
                 callback=lambda k, X: values.append(objective(X, p.Phi, p.y, W, tau)))
    assert np.all(np.diff(values) <= 1e-12)


# -- the registered methods -----------------------------------------------------------------
def test_registered():
    names = list_methods("classical")
    assert set(METHODS) <= set(names)
    for name in METHODS:
        m = get_method(name)
        assert m.scope == "block" and m.scopes == ("block", "image")


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("scope", ["block", "image"])
def test_methods_improve_on_the_start(name, scope):
    img = natural(66)
    p = Problem.from_image(img, 0.25)
    rec = get_method(name, scope=scope).reconstruct(p)
    assert rec.shape == img.shape
    backprojection = psnr(img, p.to_image(p.y @ p.Phi))
    zero = psnr(img, np.zeros_like(img))
    got = psnr(img, rec)
    assert got > max(backprojection, zero) + 5.0


def test_user_phi_with_a_large_norm_does_not_diverge():
    """rho = 1/||Phi||^2 is computed: a 3 x Phi would make rho = 1 diverge."""
    img = natural(66)
    p = Problem.from_image(img, 0.25, Phi=3.0 * make_phi(0.25))
    rec = get_method("fista-wavelet", iters=100, tau=0.1).reconstruct(p)
    assert np.all(np.isfinite(rec)) and psnr(img, rec) > 20.0


def test_nan_measurements_raise():
    p = Problem.from_image(natural(33), 0.1)
    p.y[0, 3] = np.nan
    for name in METHODS:
        for scope in ("block", "image"):
            with pytest.raises(CSBenchError, match="NaN"):
                get_method(name, scope=scope).reconstruct(p)


@pytest.mark.parametrize("params", [{"wavelet": "bior2.2"}, {"wavelet": "nope"},
                                    {"levels": 9}, {"tau": -1.0}, {"iters": 0}])
def test_bad_params_raise_one_line(params):
    p = Problem.from_image(natural(33), 0.1)
    with pytest.raises(CSBenchError) as err:
        get_method("ista-wavelet", **params).reconstruct(p)
    assert "\n" not in str(err.value)


def test_tuned_table_covers_the_paper_ratios_and_interpolates():
    for key, table in TUNED.items():
        assert {0.01, 0.04, 0.1, 0.25, 0.3, 0.4, 0.5} <= set(table), key
        for tau, iters, levels in table.values():
            assert tau > 0 and iters >= 1 and levels >= 1
    method, scope = "fista-wavelet", "block"
    t1, t2 = TUNED[(method, scope)][0.1][0], TUNED[(method, scope)][0.2][0]
    tau = tuned_settings(method, scope, 0.15)[0]
    assert min(t1, t2) - 1e-15 <= tau <= max(t1, t2) + 1e-15
    assert tuned_settings(method, scope, 0.001) == TUNED[(method, scope)][0.01]
    assert tuned_settings(method, scope, 1.0) == TUNED[(method, scope)][max(TUNED[(method, scope)])]
