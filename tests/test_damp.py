"""D-AMP (baselines/damp.py) and its denoisers (baselines/denoisers.py).

Everything here runs without the optional bm3d package; the BM3D-specific tests skip when it
is missing, and the missing-package message is tested by simulating the ImportError.
"""

import sys

import numpy as np
import pytest

from cs_bench.baselines import damp
from cs_bench.baselines.denoisers import BM3D_INSTALL, Denoiser, get_denoiser
from cs_bench.errors import CSBenchError
from cs_bench.metrics import psnr
from cs_bench.problem import Problem
from cs_bench.registry import get_method, list_methods


def tiles(seed=0):
    """64 x 64 piecewise-constant image: 8 x 8 tiles of random grey levels."""
    return np.kron(np.random.default_rng(seed).random((8, 8)), np.ones((8, 8)))


def camera(size=96):
    """A natural image (scikit-image's bundled camera), downsampled to size x size."""
    import skimage.data
    from skimage.transform import resize

    return resize(skimage.data.camera() / 255.0, (size, size), anti_aliasing=True)


def test_registered_with_scopes():
    assert "d-amp" in list_methods()
    m = get_method("d-amp")
    assert m.scope == "image" and m.p["denoiser"] == "bm3d-batch" and m.p["iters"] == 30
    assert get_method("d-amp", scope="block").scope == "block"


@pytest.mark.parametrize("scope", ["image", "block"])
def test_ratio_one_noiseless_recovers_exactly(scope):
    # At ratio 1 Phi is orthogonal, so the pseudo-data x^t + A^T z^t is x_o plus only the
    # Onsager remnant, and D-AMP's fixed point is x_o itself when the denoiser's bias on
    # x_o vanishes with sigma: TV on a piecewise-constant image loses contrast in proportion
    # to its weight (~ sigma), so sigma^t shrinks geometrically towards 0.
    img = tiles()
    rec = get_method("d-amp", scope=scope, denoiser="tv").reconstruct(Problem.from_image(img, 1.0))
    assert rec.shape == img.shape
    assert psnr(img, rec) > 50


@pytest.mark.parametrize("name", ["wavelet", "tv"])
def test_iterations_improve_on_first_iterate(name):
    img = camera()
    p = Problem.from_image(img, 0.3)
    first = get_method("d-amp", denoiser=name, iters=1).reconstruct(p)
    final = get_method("d-amp", denoiser=name, iters=15).reconstruct(p)
    assert psnr(img, final) > psnr(img, first) + 3


def test_psnr_rises_with_ratio():
    img = camera()
    scores = [psnr(img, get_method("d-amp", denoiser="tv", iters=15)
                   .reconstruct(Problem.from_image(img, r))) for r in (0.1, 0.25, 0.5)]
    assert scores[0] < scores[1] < scores[2]
    assert scores[0] > 18  # a real reconstruction, not noise


def test_deterministic_given_seed():
    p = Problem.from_image(camera(64), 0.25)
    a = get_method("d-amp", denoiser="tv", iters=5, seed=3).reconstruct(p)
    b = get_method("d-amp", denoiser="tv", iters=5, seed=3).reconstruct(p)
    c = get_method("d-amp", denoiser="tv", iters=5, seed=4).reconstruct(p)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)  # the seed drives the divergence probes


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_measurements_raise(bad):
    p = Problem.from_image(tiles(), 0.25)
    p.y[1, 5] = bad
    with pytest.raises(CSBenchError, match="NaN or Inf"):
        get_method("d-amp", denoiser="tv").reconstruct(p)


def test_missing_bm3d_one_line_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "bm3d", None)  # `import bm3d` now raises ImportError
    p = Problem.from_image(tiles(), 0.25)
    with pytest.raises(CSBenchError) as err:
        get_method("d-amp", denoiser="bm3d").reconstruct(p)  # the package's BM3D
    msg = str(err.value)
    assert "\n" not in msg
    assert "pip install 'cs-bench[bm3d]'" in msg and "make install" in msg
    assert BM3D_INSTALL in msg


def test_unknown_denoiser():
    with pytest.raises(CSBenchError, match="valid: bm3d, bm3d-batch, nlm, tv, wavelet"):
        get_method("d-amp", denoiser="bm4d").reconstruct(Problem.from_image(tiles(), 0.25))


class Scale(Denoiser):
    """The linear denoiser D(x) = c x, whose divergence is c n."""

    def __init__(self, c):
        self.c = c

    def denoise(self, x, sigma):
        return self.c * x


class Soft(Denoiser):
    """Soft thresholding at sigma: its divergence is the number of |x| > sigma."""

    def denoise(self, x, sigma):
        return np.sign(x) * np.maximum(np.abs(x) - sigma, 0.0)


def test_divergence_of_linear_denoiser():
    rng = np.random.default_rng(0)
    r = rng.random((64, 64))
    n = r.size
    for c in (0.3, 1.0, 2.5):
        b = rng.standard_normal(r.shape)
        d, div = damp.mc_divergence(Scale(c), r, 0.1, b)
        assert np.allclose(d, c * r)
        assert div == pytest.approx(c * np.sum(b * b), rel=1e-9)  # b^T (c eps b) / eps
        assert div == pytest.approx(c * n, rel=0.1)  # E ||b||^2 = n


def test_divergence_of_soft_threshold():
    rng = np.random.default_rng(1)
    r = rng.standard_normal((128, 128))
    exact = np.count_nonzero(np.abs(r) > 0.5)
    _, div = damp.mc_divergence(Soft(), r, 0.5, rng.standard_normal(r.shape))
    assert div == pytest.approx(exact, rel=0.05)


def test_skimage_denoisers_reduce_noise():
    img = camera(64)
    noisy = img + 0.1 * np.random.default_rng(2).standard_normal(img.shape)
    for name in ("nlm", "tv", "wavelet"):
        d = get_denoiser(name)
        assert np.mean((d(noisy, 0.1) - img) ** 2) < 0.5 * np.mean((noisy - img) ** 2), name
        assert np.array_equal(d(noisy, 0.0), noisy)  # sigma 0: identity


def test_bm3d_damp_runs_and_improves():
    pytest.importorskip("bm3d")
    img = camera(64)
    p = Problem.from_image(img, 0.3)
    first = get_method("d-amp", iters=1, bm3d_profile="lc").reconstruct(p)
    final = get_method("d-amp", iters=6, bm3d_profile="lc", bm3d_ht_iters=5).reconstruct(p)
    assert psnr(img, final) > psnr(img, first) + 3


def test_bm3d_pair_reuses_matching():
    pytest.importorskip("bm3d")
    x = camera(64) + 0.05 * np.random.default_rng(3).standard_normal((64, 64))
    for stages in ("all", "ht"):
        d = get_denoiser("bm3d", stages=stages, profile="lc")
        a, b = d.pair(x, x, 0.05)
        assert np.array_equal(a, b)  # same input, same matching: same output
        assert np.allclose(a, d(x, 0.05))


def test_block_scope_batched_bm3d_runs():
    img = camera(66)
    p = Problem.from_image(img, 0.3)
    rec = get_method("d-amp", scope="block", iters=8).reconstruct(p)  # bm3d-batch default
    assert rec.shape == img.shape and psnr(img, rec) > 22
