"""Validate the batched BM3D (baselines/bm3d_batch.py) against the reference ``bm3d`` package.

Both denoise the same noisy inputs (white Gaussian noise of sigma 10, 25, 50 on the 0-255
scale, one seed) in two settings:

* ``blocks``: 33 x 33 blocks, each its own image (the package is called once per block;
  ours takes all blocks in one call, the block being the search window);
* ``image``: whole 256 x 256 images (centre crops).

Images: the first ``--images`` BSD100 images (never Set11), luminance, centre 256 x 256 crop;
the blocks are a 5 x 5 grid of 33 x 33 blocks spread over each crop. Reported: mean PSNR
(0-255, output clipped to [0, 1]) of each denoiser, the difference ours - package, and the
seconds per call (this machine, one thread each).

    .venv/bin/python scripts/validate_denoiser.py [--images 3] [--profiles np,lc]
        [--out results/denoiser_validation]
"""

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from cs_bench.baselines.bm3d_batch import bm3d_batch
from cs_bench.baselines.denoisers import import_bm3d
from cs_bench.data import load_images
from cs_bench.export import atomic_write_text


def psnr(ref, x):
    return 10 * np.log10(1.0 / np.mean((np.clip(x, 0, 1) - ref) ** 2))


def package(bm3d, z, sigma, profile):
    prof = {"np": bm3d.BM3DProfile, "lc": bm3d.profiles.BM3DProfileLC}[profile]()
    prof.num_threads = 1
    return np.asarray(bm3d.bm3d(z, sigma, profile=prof))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--profiles", default="np,lc")
    ap.add_argument("--sigmas", default="10,25,50")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="results/denoiser_validation")
    args = ap.parse_args()
    bm3d = import_bm3d()
    crops = []
    for name, img in load_images("bsd100")[: args.images]:
        H, W = img.shape
        crops.append((name, img[(H - 256) // 2:(H + 256) // 2, (W - 256) // 2:(W + 256) // 2]))
    starts = np.linspace(0, 256 - 33, 5).astype(int)
    rng = np.random.default_rng(args.seed)
    rows = []
    for profile in args.profiles.split(","):
        for s255 in [float(s) for s in args.sigmas.split(",")]:
            sigma = s255 / 255.0
            for name, crop in crops:
                z = crop + sigma * rng.standard_normal(crop.shape)
                blocks = np.stack([crop[i:i + 33, j:j + 33] for i in starts for j in starts])
                zb = np.stack([z[i:i + 33, j:j + 33] for i in starts for j in starts])
                t = time.perf_counter()
                ours_b = bm3d_batch(zb, sigma, profile=profile, search="image")
                t_ours_b = time.perf_counter() - t
                t = time.perf_counter()
                pkg_b = np.stack([package(bm3d, x, sigma, profile) for x in zb])
                t_pkg_b = time.perf_counter() - t
                t = time.perf_counter()
                ours_i = bm3d_batch(z, sigma, profile=profile)
                t_ours_i = time.perf_counter() - t
                t = time.perf_counter()
                pkg_i = package(bm3d, z, sigma, profile)
                t_pkg_i = time.perf_counter() - t
                nb = len(blocks)
                rows.append(dict(profile=profile, sigma=s255, setting="blocks", image=name,
                                 ours=np.mean([psnr(a, b) for a, b in zip(blocks, ours_b)]),
                                 package=np.mean([psnr(a, b) for a, b in zip(blocks, pkg_b)]),
                                 noisy=np.mean([psnr(a, b) for a, b in zip(blocks, zb)]),
                                 s_ours=t_ours_b / nb, s_package=t_pkg_b / nb))
                rows.append(dict(profile=profile, sigma=s255, setting="image", image=name,
                                 ours=psnr(crop, ours_i), package=psnr(crop, pkg_i),
                                 noisy=psnr(crop, z), s_ours=t_ours_i, s_package=t_pkg_i))
                print(rows[-2]["profile"], s255, name, "blocks %.2f / %.2f, image %.2f / %.2f"
                      % (rows[-2]["ours"], rows[-2]["package"], rows[-1]["ours"],
                         rows[-1]["package"]), flush=True)
                write(rows, args)


def write(rows, args):
    """Write the csv and the Markdown table of the rows so far."""
    df = pd.DataFrame(rows)
    out = Path(args.out)
    atomic_write_text(out.with_suffix(".csv"), df.to_csv(index=False, float_format="%.4f"))
    g = (df.groupby(["setting", "profile", "sigma"], sort=False)
           [["noisy", "package", "ours", "s_package", "s_ours"]].mean().reset_index())
    g["diff"] = g["ours"] - g["package"]
    lines = [
        "# Batched BM3D against the bm3d package",
        "",
        f"Made by `scripts/validate_denoiser.py --images {args.images}`: the first "
        f"{args.images} BSD100 images (luminance, centre 256 x 256 crops; never Set11), white "
        f"Gaussian noise of sigma {args.sigmas} (0-255 scale, seed {args.seed}). `blocks`: 25 "
        "33 x 33 blocks per image, each denoised as its own image (the package once per "
        "block; ours all blocks in one call, the block being the search window). `image`: "
        "the whole 256 x 256 crop. Mean PSNR in dB (output clipped to [0, 1]); seconds per "
        f"block or per image, one thread, on {platform.processor() or platform.machine()} "
        "(2-core CPU shared with other jobs, so the seconds are indicative).",
        "",
        "| setting | profile | sigma | noisy | package | ours | ours - package | s package | s ours |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in g.itertuples():
        lines.append(f"| {r.setting} | {r.profile} | {r.sigma:g} | {r.noisy:.2f} | "
                     f"{r.package:.2f} | {r.ours:.2f} | {r.diff:+.2f} | {r.s_package:.3f} | "
                     f"{r.s_ours:.3f} |")
    worst = g["diff"].abs().max()
    lines += ["", f"Largest |ours - package|: {worst:.2f} dB "
              f"({'within' if worst <= 0.2 else 'NOT within'} the 0.2 dB target)."]
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
