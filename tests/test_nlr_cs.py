"""Tests of NLR-CS (baselines/nlr_cs.py) and its patch helpers (baselines/patches.py)."""

import numpy as np
import pytest

from cs_bench.baselines.nlr_cs import NLRCS, CroppedOperator, conjugate_gradient, weighted_svt
from cs_bench.baselines.patches import aggregate, all_patches, block_matching, reference_grid
from cs_bench.errors import CSBenchError
from cs_bench.metrics import psnr
from cs_bench.problem import Problem
from cs_bench.registry import get_method

# small, fast settings for tiny images; the algorithm is the same as with the defaults
FAST = {"iters": 8, "regroup": 4, "radius": 6, "similar": 16}


def camera(size):
    import skimage.data

    img = skimage.data.camera().astype(np.float64) / 255.0
    return img[200 : 200 + size, 220 : 220 + size]


def test_ratio_one_recovers_image():
    img = camera(33)
    rec = get_method("nlr-cs", **FAST).reconstruct(Problem.from_image(img, 1.0))
    assert psnr(img, rec) > 50


def test_psnr_rises_with_ratio():
    img = camera(66)
    method = get_method("nlr-cs", **FAST)
    scores = [psnr(img, method.reconstruct(Problem.from_image(img, r))) for r in (0.1, 0.3, 0.5)]
    assert scores[0] < scores[1] < scores[2]
    assert scores[0] > 18  # far better than the zero image (about 5 dB here)


def test_iterations_improve_on_initial_estimate():
    img = camera(66)
    prob = Problem.from_image(img, 0.25)
    start = psnr(img, NLRCS(**{**FAST, "iters": 0}).reconstruct(prob))
    assert psnr(img, NLRCS(**FAST).reconstruct(prob)) > start + 1.0


def test_weighted_svt_matches_direct_computation():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((5, 7))
    tau, eps = 2.0, 0.5
    U, sigma, Vt = np.linalg.svd(X, full_matrices=False)
    s = sigma.copy()
    for _ in range(3):  # w_j = 1 / (s_j + eps), then soft-threshold sigma_j by tau w_j
        s = np.array([max(sig - tau / (prev + eps), 0.0) for sig, prev in zip(sigma, s)])
    direct = U @ np.diag(s) @ Vt
    assert np.allclose(weighted_svt(X[None], tau, eps, 3)[0], direct)


def test_weighted_svt_reduces_rank_and_surrogate_objective():
    rng = np.random.default_rng(2)
    low = rng.standard_normal((36, 2)) @ rng.standard_normal((2, 45)) * 10
    X = low + 0.05 * rng.standard_normal((36, 45))
    tau, eps = 1.0, 0.1
    L = weighted_svt(X[None], tau, eps, 3)[0]
    assert np.linalg.matrix_rank(X) == 36
    assert np.linalg.matrix_rank(L, tol=1e-8) == 2
    assert np.linalg.norm(L - low) < np.linalg.norm(X - low)

    # reweighting is a majorise-minimise scheme: the log-det objective goes down
    def objective(L):
        s = np.linalg.svd(L, compute_uv=False)
        return np.sum((X - L) ** 2) + 2 * tau * np.sum(np.log(s + eps))

    values = [objective(X)] + [objective(weighted_svt(X[None], tau, eps, j)[0]) for j in (1, 2, 4)]
    assert all(a >= b - 1e-9 for a, b in zip(values, values[1:]))


def test_block_matching_finds_identical_patch_first():
    rng = np.random.default_rng(3)
    img = rng.random((30, 30))
    img[12:18, 20:26] = img[10:16, 10:16]  # plant a copy of the patch at (10, 10)
    idx, dist = block_matching(img, p=6, step=5, radius=10, m=5)
    Wq = 30 - 6 + 1
    assert np.all(dist[:, 0] == 0)
    rows, cols = reference_grid(img.shape, 6, 5)
    refs = (rows[:, None] * Wq + cols[None]).ravel()
    assert np.array_equal(idx[:, 0], refs)  # the reference itself
    g = int(np.flatnonzero(refs == 10 * Wq + 10)[0])
    assert idx[g, 1] == 12 * Wq + 20 and dist[g, 1] < 1e-12  # then its copy
    assert np.all(np.diff(dist, axis=1) >= 0)


def test_block_matching_matches_brute_force():
    rng = np.random.default_rng(4)
    img = rng.random((17, 19))
    p, radius, m = 4, 3, 6
    idx, dist = block_matching(img, p=p, step=3, radius=radius, m=m)
    P = all_patches(img, p)
    Hq, Wq = 17 - p + 1, 19 - p + 1
    rows, cols = reference_grid(img.shape, p, 3)
    g = 0
    for r in rows:
        for c in cols:
            d = [np.sum((P[a * Wq + b] - P[r * Wq + c]) ** 2)
                 for a in range(max(0, r - radius), min(Hq, r + radius + 1))
                 for b in range(max(0, c - radius), min(Wq, c + radius + 1))]
            assert np.allclose(np.sort(d)[:m], dist[g])
            assert np.allclose(np.sum((P[idx[g]] - P[r * Wq + c]) ** 2, axis=1), dist[g])
            g += 1


def test_aggregate_averages_overlapping_patches():
    img = np.random.default_rng(5).random((16, 21))
    idx, _ = block_matching(img, p=5, step=4, radius=4, m=7)
    total, count = aggregate(all_patches(img, 5)[idx], idx, img.shape, 5)
    assert count.min() > 0  # the reference grid covers every pixel
    assert np.allclose(total / count, img)


def test_conjugate_gradient_with_general_phi():
    # a user's Phi without orthonormal rows: CG must still solve (Phi^T Phi + beta I) x = b
    rng = np.random.default_rng(6)
    Phi = rng.standard_normal((300, 1089)) * 0.1
    img = camera(40)
    prob = Problem.from_image(img, 0.3, Phi=Phi)
    op = CroppedOperator(prob)
    b = rng.standard_normal(img.shape)
    x = conjugate_gradient(lambda v: op.AtA(v) + 0.05 * v, b, np.zeros_like(b), 500, 1e-10)
    assert np.allclose(op.AtA(x) + 0.05 * x, b, atol=1e-6)
    rec = NLRCS(**FAST).reconstruct(prob)
    assert rec.shape == img.shape and psnr(img, rec) > 20


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_bad_measurements_raise(bad):
    prob = Problem.from_image(camera(33), 0.25)
    prob.y[0, 3] = bad
    with pytest.raises(CSBenchError, match="NaN or Inf"):
        get_method("nlr-cs").reconstruct(prob)


def test_registry_scope_and_determinism():
    method = get_method("nlr-cs", **FAST)
    assert method.scope == "image" and method.family == "classical"
    with pytest.raises(CSBenchError, match="block"):
        get_method("nlr-cs", scope="pixel")
    img = camera(40)
    prob = Problem.from_image(img, 0.25)
    a, b = method.reconstruct(prob), method.reconstruct(prob)
    assert a.shape == img.shape and a.min() >= 0 and a.max() <= 1
    assert np.array_equal(a, b)


def test_block_scope_runs_and_groups_stay_in_blocks():
    from cs_bench.baselines.nlr_cs import block_scope_matching

    x = np.random.default_rng(0).random((66, 66))
    idx = block_scope_matching(x, 33, 6, 5, 20, 16)
    Q = 66 - 6 + 1
    r, c = idx // Q, idx % Q
    # every patch of a group lies in the block of its reference (column 0)
    assert np.all(r // 33 == r[:, :1] // 33) and np.all((r % 33) <= 27)
    assert np.all(c // 33 == c[:, :1] // 33) and np.all((c % 33) <= 27)
    img = camera(40)
    rec = get_method("nlr-cs", scope="block", **FAST).reconstruct(Problem.from_image(img, 0.3))
    assert rec.shape == img.shape and psnr(img, rec) > 20
