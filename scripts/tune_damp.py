"""Choices of d-amp that the D-AMP paper does not fix, made on T91 only (never Set11).

Images: every 3rd T91 image of at least 256 x 256 (name order), centre-cropped to 256 x 256
(the size of the paper's timing): t37, t46, t53, tt10, tt13, tt2, tt23 (7 images; the
``--images`` option takes fewer).

``--denoisers``: the strength of the scikit-image denoisers (``NLM_H``, ``TV_WEIGHT``,
``WAVELET`` in baselines/denoisers.py). Each image gets white Gaussian noise of std 5, 10,
20, 40, 80 and 160 (0-255 scale; D-AMP's iterations go from ~1.5 on the [0, 1] scale down to
a few grey levels); the value with the lowest mean squared error over all images and noise
levels wins.

``--bm3d``: D-AMP with BM3D at image scope, at ratios 0.1 and 0.25, for the settings that
trade time for quality (profile np or lc, hard-thresholding-only iterations first, levels):
mean PSNR and mean CPU seconds per 256 x 256 image (one thread, so CPU seconds are the wall
time of an unloaded core).

``--skimage``: D-AMP with each scikit-image denoiser (image scope), PSNR and CPU seconds.

``--sigma``: the noise level handed to the denoiser at image scope (max over blocks, the
default, against the paper's one global ||z|| / sqrt(m)), with the ``tv`` denoiser.

    OPENBLAS_NUM_THREADS=1 CS_BENCH_DATA=../shared/data nice python scripts/tune_damp.py --denoisers
"""

import argparse
import time

import numpy as np

from cs_bench.baselines import damp as damp_mod
from cs_bench.baselines import denoisers
from cs_bench.data import image_refs
from cs_bench.metrics import psnr
from cs_bench.problem import Problem
from cs_bench.registry import get_method

NOISE = (5, 10, 20, 40, 80, 160)  # 0-255 scale
GRIDS = {
    "NLM_H": (0.4, 0.6, 0.8, 1.0, 1.2),
    "TV_WEIGHT": (0.25, 0.5, 0.75, 1.0, 1.5, 2.0),
    "WAVELET": ("db1", "db2", "db4", "sym4", "sym8", "coif2"),
}
DENOISER_OF = {"NLM_H": "nlm", "TV_WEIGHT": "tv", "WAVELET": "wavelet"}


def training_images(n_images=7, crop=256, step=3):
    """Every ``step``-th T91 image of at least crop x crop (name order), centre-cropped."""
    out = []
    for ref in image_refs("t91"):
        img = ref.load()
        if min(img.shape) >= crop:
            top, left = (img.shape[0] - crop) // 2, (img.shape[1] - crop) // 2
            out.append((ref.name, img[top:top + crop, left:left + crop]))
    return out[::step][:n_images]


def tune_denoisers(images, seed=0):
    rng = np.random.default_rng(seed)
    noisy = [(img, s / 255.0, img + s / 255.0 * rng.standard_normal(img.shape))
             for _, img in images for s in NOISE]
    for const, grid in GRIDS.items():
        old = getattr(denoisers, const)
        scores = []
        for value in grid:
            setattr(denoisers, const, value)
            d = denoisers.get_denoiser(DENOISER_OF[const])
            mse = np.mean([np.mean((d(z, s) - img) ** 2) for img, s, z in noisy])
            scores.append(mse)
            print(f"{const} = {value!r}: mean MSE {mse:.6g}", flush=True)
        setattr(denoisers, const, old)
        print(f"best {const} = {grid[int(np.argmin(scores))]!r}\n", flush=True)


def run_damp(images, ratios, settings, scope="image"):
    """Mean PSNR and CPU seconds of d-amp with each of ``settings`` (dicts of params)."""
    for ratio in ratios:
        for params in settings:
            method = get_method("d-amp", scope=scope, **params)
            scores, cpu = [], []
            for _, img in images:
                p = Problem.from_image(img, ratio)
                c = time.process_time()
                rec = method.reconstruct(p)
                cpu.append(time.process_time() - c)
                scores.append(psnr(img, rec))
            print(f"ratio {ratio} {params}: PSNR {np.mean(scores):.2f} dB "
                  f"({' '.join(f'{s:.2f}' for s in scores)}), CPU {np.mean(cpu):.1f} s/image",
                  flush=True)


BM3D_SETTINGS = [
    {"bm3d_profile": "lc"},
    {"bm3d_profile": "lc", "bm3d_ht_iters": 25},
    {"bm3d_profile": "lc", "bm3d_ht_iters": 29},
    {"bm3d_profile": "lc", "bm3d_ht_iters": 30},
]
#: the reference: the full two-stage BM3D of the package's normal profile in every iteration
BM3D_REFERENCE = [{"bm3d_profile": "np"}]


def compare_sigma(images, ratios):
    """Image scope, tv denoiser: sigma = max_k sigma_k (d-amp) vs the paper's global one."""
    original = damp_mod.image_step

    def global_sigma(problem, denoise_at, levels):
        step = original(problem, denoise_at, levels)

        def wrapped(t, R, sigma, B):
            g = np.full_like(sigma, np.sqrt(np.mean(sigma ** 2)))  # ||z|| / sqrt(m)
            X, div = step(t, R, g, B)
            if div is not None:  # the paper's single Onsager term z div / m
                div = np.full_like(div, div.mean())
            return X, div

        return wrapped

    print("sigma = max over blocks (d-amp):")
    run_damp(images, ratios, [{"denoiser": "tv"}, {"denoiser": "tv", "levels": 4}])
    print("the paper's global sigma and Onsager term:")
    damp_mod.image_step = global_sigma
    try:
        run_damp(images, ratios, [{"denoiser": "tv"}])
    finally:
        damp_mod.image_step = original


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--denoisers", action="store_true")
    ap.add_argument("--bm3d", action="store_true")
    ap.add_argument("--bm3d-reference", action="store_true")
    ap.add_argument("--sigma", action="store_true")
    ap.add_argument("--skimage", action="store_true")
    ap.add_argument("--images", type=int, default=7)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--ratios", default="0.1,0.25")
    args = ap.parse_args()
    images = training_images(args.images, args.crop)
    print("images:", ", ".join(name for name, _ in images), flush=True)
    ratios = [float(r) for r in args.ratios.split(",")]
    if args.denoisers:
        tune_denoisers(images)
    if args.sigma:
        compare_sigma(images, ratios)
    if args.skimage:
        run_damp(images, ratios, [{"denoiser": d} for d in ("nlm", "tv", "wavelet")])
    if args.bm3d:
        run_damp(images, ratios, BM3D_SETTINGS)
    if args.bm3d_reference:
        run_damp(images, ratios, BM3D_REFERENCE)


if __name__ == "__main__":
    main()
