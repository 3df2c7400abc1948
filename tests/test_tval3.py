"""Tests of TVAL3 (baselines/tval3.py) on tiny images."""

import numpy as np
import pytest
from cs_bench.baselines.tval3 import TVAL3, grad, grad_t, shrink_aniso, shrink_iso, solve

from cs_bench.errors import CSBenchError
from cs_bench.metrics import psnr
from cs_bench.problem import Problem
from cs_bench.registry import get_method


def piecewise_constant(size=66):
    """Rectangles and a disc on a grey background: what TV is made for."""
    img = np.full((size, size), 0.2)
    img[8:30, 10:50] = 0.9
    img[40:60, 5:25] = 0.5
    yy, xx = np.mgrid[:size, :size]
    img[(yy - 45) ** 2 + (xx - 48) ** 2 < 12**2] = 0.7
    return img


def natural(size=66):
    """A crop of scikit-image's camera man, on the [0, 1] scale."""
    import skimage.data

    return skimage.data.camera()[100:100 + size, 200:200 + size] / 255.0


def least_squares(p):
    """Min-norm least squares, Phi^T y (Phi has orthonormal rows)."""
    return p.to_image(p.y @ p.Phi)


# -- the operators ---------------------------------------------------------------------------
def test_shrink_aniso_solves_its_1d_problem():
    rng = np.random.default_rng(1)
    v, t = rng.normal(0, 2, 50), 0.7
    w = shrink_aniso(v, t)
    grid = np.linspace(-8, 8, 16001)  # brute force argmin |w| + (w - v)^2 / (2t)
    best = grid[np.argmin(np.abs(grid)[None] + (grid[None] - v[:, None]) ** 2 / (2 * t), axis=1)]
    assert np.abs(w - best).max() < 2e-3
    assert np.all(w[np.abs(v) <= t] == 0)


def test_shrink_iso_solves_its_2d_problem():
    rng = np.random.default_rng(2)
    v, t = rng.normal(0, 1.5, (2, 30, 1)), 0.9
    w = shrink_iso(v, t)
    norm = np.linalg.norm(v, axis=0)
    assert np.all(w[:, norm <= t] == 0)
    big = norm > t  # closed form: (||v|| - t) v / ||v||
    assert np.allclose(w[:, big], v[:, big] * (1 - t / norm[big]))

    def objective(x):
        return np.linalg.norm(x, axis=0) + np.sum((x - v) ** 2, axis=0) / (2 * t)

    for _ in range(20):  # no random perturbation does better
        assert np.all(objective(w) <= objective(w + rng.normal(0, 0.05, w.shape)) + 1e-12)


def test_grad_is_periodic_and_grad_t_is_its_adjoint():
    rng = np.random.default_rng(3)
    u, q = rng.random((3, 7, 5)), rng.random((3, 2, 7, 5))
    assert np.isclose(np.sum(grad(u) * q), np.sum(u * grad_t(q)))
    assert np.allclose(grad(np.full((4, 4), 3.0)), 0)  # constants have no variation
    assert grad(u)[0, 0, 2, -1] == u[0, 2, 0] - u[0, 2, -1]  # wraps around


# -- reconstruction --------------------------------------------------------------------------
def test_full_sampling_recovers_the_image():
    img = natural(33)
    p = Problem.from_image(img, ratio=1.0, padding="minimal")
    rec = TVAL3(tol=1e-6, tol_inner=1e-5, maxit=2000).reconstruct(p)
    assert psnr(img, rec) > 50


def test_tv_beats_least_squares_on_piecewise_constant():
    img = piecewise_constant()
    p = Problem.from_image(img, ratio=0.3, padding="minimal")
    for scope in ("block", "image"):
        rec = get_method("tval3", scope=scope).reconstruct(p)
        assert rec.shape == img.shape
        assert psnr(img, rec) > psnr(img, least_squares(p)) + 10, scope


def test_psnr_rises_with_ratio():
    img = natural()
    scores = [psnr(img, TVAL3().reconstruct(Problem.from_image(img, r, padding="minimal")))
              for r in (0.1, 0.3, 0.5)]
    assert scores[0] < scores[1] < scores[2]


def test_iso_and_aniso_both_work_and_differ():
    img = piecewise_constant()
    p = Problem.from_image(img, ratio=0.25, padding="minimal")
    recs = {tv: TVAL3(tv=tv).reconstruct(p) for tv in ("aniso", "iso")}
    for tv, rec in recs.items():
        assert psnr(img, rec) > psnr(img, least_squares(p)) + 5, tv
    assert not np.allclose(recs["aniso"], recs["iso"])


def test_nonneg_and_determinism():
    img = natural()
    p = Problem.from_image(img, ratio=0.1, padding="minimal")
    a, b = TVAL3().reconstruct(p), TVAL3().reconstruct(p)
    assert np.array_equal(a, b)
    assert a.min() >= 0
    assert TVAL3(nonneg=False).reconstruct(p).min() < 0  # without the projection it dips


def test_blocks_are_solved_independently():
    """The batched solver gives each block the answer it gets alone (per-block state)."""
    img = natural()
    p = Problem.from_image(img, ratio=0.25, padding="minimal")
    Phi = p.Phi

    def A(u):
        return u.reshape(len(u), -1) @ Phi.T

    def At(r):
        return (r @ Phi).reshape(len(r), 33, 33)

    together, steps = solve(255 * p.y, A, At)
    alone = [solve(255 * p.y[k:k + 1], A, At) for k in range(p.n_blocks)]
    assert np.allclose(together, np.concatenate([u for u, _ in alone]), atol=1e-8)
    assert steps.tolist() == [int(s[0]) for _, s in alone]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_bad_measurements_raise(bad):
    p = Problem.from_image(natural(33), ratio=0.2, padding="minimal")
    p.y[0, 3] = bad
    with pytest.raises(CSBenchError, match="NaN or Inf"):
        TVAL3().reconstruct(p)


def test_bad_options_raise():
    with pytest.raises(CSBenchError):
        get_method("tval3", scope="video")
    p = Problem.from_image(natural(33), ratio=0.2, padding="minimal")
    with pytest.raises(CSBenchError, match="tv must be"):
        TVAL3(tv="l2").reconstruct(p)
