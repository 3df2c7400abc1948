import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from cs_bench import blocks
from cs_bench.errors import CSBenchError
from cs_bench.images import luminance, to_gray255
from cs_bench.metrics import psnr, ssim
from cs_bench.problem import Problem
from cs_bench.sensing import N, check_ratio, load_phi, make_phi, measure, measurement_count


def test_phi_orthonormal_rows_and_nested():
    P25, P10 = make_phi(0.25), make_phi(0.10)
    assert P25.shape == (272, N) and P10.shape == (109, N)
    assert np.abs(P25 @ P25.T - np.eye(272)).max() < 1e-10
    assert np.array_equal(P25[:109], P10)  # nested: rows of one orthogonal matrix


def test_phi_deterministic_and_seeded():
    a = make_phi(0.1, seed=0)
    from cs_bench.sensing import _orthogonal

    _orthogonal.cache_clear()
    assert np.array_equal(a, make_phi(0.1, seed=0))
    assert not np.allclose(a, make_phi(0.1, seed=1))
    # sign fix: the orthogonal factor's R has a positive diagonal, so Q is unique
    Q = make_phi(1.0).T
    G = np.random.default_rng(0).standard_normal((N, N))
    R = Q.T @ G
    assert np.all(np.diag(R) > 0)
    assert np.abs(np.tril(R, -1)).max() < 1e-8


@pytest.mark.parametrize("ratio,m", [(0.01, 10), (0.04, 43), (0.1, 109), (0.25, 272), (0.3, 327),
                                     (0.4, 436), (0.5, 545), (0.2, 218), (0.6, 653), (1.0, 1089)])
def test_measurement_counts(ratio, m):
    assert measurement_count(ratio) == m


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, "abc", float("nan")])
def test_bad_ratio(bad):
    with pytest.raises(CSBenchError):
        check_ratio(bad)


@pytest.mark.parametrize("shape", [(33, 33), (256, 256), (257, 250), (512, 512), (10, 70)])
@pytest.mark.parametrize("padding", ["paper", "minimal"])
def test_block_round_trip(shape, padding, rng):
    img = rng.random(shape)
    X, pshape = blocks.image_to_blocks(img, padding=padding)
    assert X.shape[1] == 1089 and pshape[0] % 33 == 0 and pshape[1] % 33 == 0
    assert np.array_equal(blocks.blocks_to_image(X, pshape, shape), img)


def test_paper_padding_adds_a_block_on_multiples():
    assert blocks.padded_shape((33, 66)) == (66, 99)
    assert blocks.padded_shape((256, 256)) == (264, 264)
    assert blocks.padded_shape((33, 66), padding="minimal") == (33, 66)


def test_blocks_are_raster_order_row_major(rng):
    img = rng.random((66, 99))
    X, _ = blocks.image_to_blocks(img, padding="minimal")
    assert np.array_equal(X[1], img[:33, 33:66].ravel())  # second block: top row, second column
    assert np.array_equal(X[3], img[33:66, :33].ravel())


def test_psnr_matches_skimage(rng):
    a, b = rng.random((40, 40)), rng.random((40, 40))
    ref = peak_signal_noise_ratio(a * 255, b * 255, data_range=255)
    assert psnr(a, b) == pytest.approx(ref, rel=1e-12)
    assert psnr(a, np.clip(b * 1.5, 0, None)) == pytest.approx(psnr(a, np.clip(b * 1.5, 0, 1)))
    assert abs(ssim(a, b)) < 0.1 and ssim(a, a) == pytest.approx(1.0)


def test_luminance_bt601():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], np.uint8)
    assert np.allclose(luminance(rgb)[0], [76.245, 149.685, 29.07, 255.0])
    assert np.allclose(to_gray255(rgb), luminance(rgb))
    assert np.allclose(to_gray255(np.full((2, 2), 65535, np.uint16)), 255.0)


def test_measure_and_problem_operators(rng):
    img = rng.random((40, 50))
    p = Problem.from_image(img, 0.25)
    X, _ = blocks.image_to_blocks(img)
    assert np.allclose(p.y, X @ p.Phi.T)
    # A and At are adjoint on padded images
    u, v = rng.random(p.padded_shape), rng.random(p.y.shape)
    assert np.isclose(np.sum(p.A(u) * v), np.sum(u * p.At(v)))
    noisy = measure(X, p.Phi, sigma=0.1, seed=3)
    assert np.allclose(noisy, measure(X, p.Phi, sigma=0.1, seed=3))
    assert 0.08 < np.std(noisy - p.y) < 0.12


def test_load_phi(tmp_path):
    P = make_phi(0.1)
    np.save(tmp_path / "phi.npy", P)
    assert np.array_equal(load_phi(tmp_path / "phi.npy"), P)
    from scipy.io import savemat

    savemat(tmp_path / "phi.mat", {"phi": P})
    assert np.allclose(load_phi(tmp_path / "phi.mat"), P)
    np.save(tmp_path / "bad.npy", np.zeros((5, 100)))
    with pytest.raises(CSBenchError, match="shape"):
        load_phi(tmp_path / "bad.npy")
    Pn = P.copy()
    Pn[0, 0] = np.nan
    np.save(tmp_path / "nan.npy", Pn)
    with pytest.raises(CSBenchError, match="NaN"):
        load_phi(tmp_path / "nan.npy")
