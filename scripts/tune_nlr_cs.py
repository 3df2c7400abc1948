"""Tune NLR-CS hyperparameters on T91 crops (never Set11).

Usage: CS_BENCH_DATA=... python scripts/tune_nlr_cs.py --ratios 0.1 0.25 \
           --images t1 t20 tt10 --crop 99 --set tau=100,200,400 eta=0.05
Each ``--set key=v1,v2`` is a grid axis; every combination is run on every image and
ratio and the mean PSNR (dB) and seconds per image are printed, best first per ratio.
"""

import argparse
import itertools
import time

import numpy as np

from cs_bench.data import image_refs
from cs_bench.metrics import psnr
from cs_bench.problem import Problem
from cs_bench.registry import get_method


def centre_crop(img, size):
    H, W = img.shape
    r, c = max(0, (H - size) // 2), max(0, (W - size) // 2)
    return img[r : r + size, c : c + size]


def parse_value(v):
    if v.lower() == "none":
        return None
    try:
        return int(v)
    except ValueError:
        return float(v)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.1, 0.25])
    ap.add_argument("--images", nargs="+", default=["t1", "t20", "tt10"])
    ap.add_argument("--crop", type=int, default=99)
    ap.add_argument("--set", nargs="*", default=[], help="key=v1,v2,... grid axes")
    args = ap.parse_args(argv)

    refs = {r.name: r for r in image_refs("t91")}
    images = [(n, centre_crop(refs[n].load(), args.crop)) for n in args.images]
    axes = []
    for item in args.set:
        key, values = item.split("=", 1)
        axes.append([(key, parse_value(v)) for v in values.split(",")])
    for ratio in args.ratios:
        rows = []
        for combo in itertools.product(*axes) if axes else [()]:
            params = dict(combo)
            method = get_method("nlr-cs", **params)
            scores, secs = [], []
            for _, img in images:
                prob = Problem.from_image(img, ratio)
                t0 = time.perf_counter()
                rec = method.reconstruct(prob)
                secs.append(time.perf_counter() - t0)
                scores.append(psnr(img, rec))
            rows.append((float(np.mean(scores)), float(np.mean(secs)), params, scores))
            print(f"ratio {ratio:.2f} {params}: {rows[-1][0]:.2f} dB "
                  f"({', '.join(f'{s:.2f}' for s in scores)}) {rows[-1][1]:.1f} s", flush=True)
        rows.sort(key=lambda r: -r[0])
        print(f"== ratio {ratio:.2f}, best first")
        for mean, sec, params, _ in rows:
            print(f"  {mean:6.2f} dB  {sec:5.1f} s  {params}")


if __name__ == "__main__":
    main()
