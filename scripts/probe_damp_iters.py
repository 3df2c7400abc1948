"""D-AMP PSNR after every iteration, on T91 crops only (never Set11): how many of the 30
iterations the default needs.

One run of 30 iterations per (image, ratio) records the image after each iteration t, so
the PSNR of ``iters = t`` for every t comes from one run (the iterations before t do not
depend on ``iters``; only the last one skips the divergence probe, which does not change X).

    OPENBLAS_NUM_THREADS=1 CS_BENCH_DATA=../shared/data python scripts/probe_damp_iters.py
"""

import argparse
import time

import numpy as np

from cs_bench.baselines import damp as damp_mod
from cs_bench.metrics import psnr
from cs_bench.problem import Problem
from cs_bench.registry import get_method

from tune_damp import training_images


def curve(img, ratio, iters=30):
    p = Problem.from_image(img, ratio)
    method = get_method("d-amp", scope="image")
    seen = []
    real_damp = damp_mod.damp

    def recording(y, A, step, n, rng):
        def wrapped(t, R, sigma, B):
            X, div = step(t, R, sigma, B)
            seen.append(psnr(img, np.clip(p.to_image(X), 0, 1)))
            return X, div
        return real_damp(y, A, wrapped, n, rng)

    damp_mod.damp = recording
    try:
        method.p["iters"] = iters
        t0 = time.process_time()
        method.reconstruct(p)
        sec = time.process_time() - t0
    finally:
        damp_mod.damp = real_damp
    return np.array(seen), sec


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=3)
    ap.add_argument("--ratios", default="0.1,0.25,0.5")
    a = ap.parse_args()
    imgs = training_images(a.images)
    marks = (5, 8, 10, 12, 15, 20, 25, 30)
    print("ratio image " + " ".join(f"t={m:<5d}" for m in marks) + " CPU s (30 it)")
    for r in [float(x) for x in a.ratios.split(",")]:
        rows = []
        for name, img in imgs:
            c, sec = curve(img, r)
            rows.append(c)
            print(f"{r:<5g} {name:<5} " + " ".join(f"{c[m - 1]:7.2f}" for m in marks)
                  + f" {sec:6.1f}", flush=True)
        mean = np.mean(rows, axis=0)
        print(f"{r:<5g} mean  " + " ".join(f"{mean[m - 1]:7.2f}" for m in marks), flush=True)


if __name__ == "__main__":
    main()
