"""Grid search of tau, iterations and levels of ista-wavelet / fista-wavelet, on T91 only.

Images (T91 only, never Set11), centre crops of the T91 images at least that large, in
name order:

* block scope: every 9th, 8 images (t1, t19, t3, t38, t47, t55, t63, tt13), 120 x 120
  (padded to 132 x 132 = 16 blocks, about the padding share of 256 in 264);
* image scope: every 7th, 6 images (t11, t4, t49, t58, tt10, tt2), 180 x 180 (padded to
  198 x 198): larger, so that the coarse wavelet levels see more than a few blocks.

For every scope and ratio:

1. levels: FISTA, ``--levels-iters`` iterations, a tau search for each level count of
   ``LEVELS`` (extended by one level while the best is at an edge); the level count with
   the best mean PSNR is kept, for ISTA as well (same objective, ISTA only converges more
   slowly).
2. tau and iterations, per method: one run of the largest checkpoint per tau records the
   mean PSNR after each checkpoint count. Chosen: the fewest iterations whose mean PSNR is
   within ``--tol`` dB of the best of the grid (a longer run must buy at least that much),
   with its best tau.

The tau search starts from ``--taus`` (stage 1) or from stage 1's tau x (1/3, 1, 3)
(stage 2), and extends the grid by factors of 3 while the best tau is at its edge (at most
two steps). It prints the table to paste into ``TUNED`` in baselines/wavelet_ista.py.

    OPENBLAS_NUM_THREADS=1 CS_BENCH_DATA=../shared/data nice python scripts/tune_wavelet.py
"""

import argparse
import json
import time
import warnings
from functools import partial

import numpy as np
from cs_bench.baselines.wavelet_ista import DEFAULT_WAVELET, solve_blocks, solve_image
from cs_bench.baselines.wavelet_ops import BlockWavelet, ImageWavelet

from cs_bench.data import image_refs
from cs_bench.metrics import psnr
from cs_bench.problem import Problem

RATIOS = (0.01, 0.04, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6)
TAUS = (1e-3, 3e-3, 1e-2, 3e-2)
LEVELS = {"block": (2, 3, 4), "image": (3, 4, 5)}  # start; extended while best at an edge
LEVEL_RANGE = {"block": range(1, 6), "image": range(1, 7)}
#: scope -> (crop, number of images, step through the T91 images at least crop x crop)
IMAGES = {"block": (120, 8, 9), "image": (180, 6, 7)}
CHECKPOINTS = {"ista-wavelet": (50, 100, 200, 400, 800),
               "fista-wavelet": (25, 50, 100, 200, 400)}


def training_images(crop, n_images, step):
    """Every ``step``-th T91 image of at least crop x crop (name order), centre-cropped."""
    big = [(ref.name, img) for ref in image_refs("t91")
           for img in [ref.load()] if min(img.shape) >= crop]
    out = []
    for name, img in big[::step][:n_images]:
        top, left = (img.shape[0] - crop) // 2, (img.shape[1] - crop) // 2
        out.append((name, img[top:top + crop, left:left + crop]))
    return out


def run_block(images, ratio, tau, fista, checkpoints, wavelet, levels):
    """Mean PSNR after each checkpoint; all blocks of all images in one batch."""
    probs = [Problem.from_image(img, ratio) for _, img in images]
    Y = np.vstack([p.y for p in probs])
    cuts = np.cumsum([0] + [p.n_blocks for p in probs])
    W = BlockWavelet(wavelet, levels)
    got = {}

    def cb(k, X):
        if k in checkpoints:
            got[k] = float(np.mean([psnr(img, p.to_image(X[cuts[i]:cuts[i + 1]]))
                                    for i, ((_, img), p) in enumerate(zip(images, probs))]))

    solve_blocks(Y, probs[0].Phi, tau, max(checkpoints), W, fista, callback=cb)
    return got


def run_image(images, ratio, tau, fista, checkpoints, wavelet, levels):
    """Mean PSNR after each checkpoint, one whole-image solve per image."""
    got = {k: [] for k in checkpoints}
    for _, img in images:
        p = Problem.from_image(img, ratio)
        Hp, Wp = p.padded_shape
        W = ImageWavelet((Hp, Wp), wavelet, levels)

        def cb(k, x, p=p, img=img, Hp=Hp, Wp=Wp):
            if k in checkpoints:
                got[k].append(psnr(img, p.crop(x[:Hp, :Wp])))

        solve_image(p, tau, max(checkpoints), W, fista, callback=cb)
    return {k: float(np.mean(v)) for k, v in got.items()}


def search_tau(evaluate, taus, max_steps=2):
    """{tau: {iters: mean PSNR}} over taus, extended by x3 steps while the best is at an edge."""
    res = {t: evaluate(t) for t in sorted(taus)}
    for _ in range(max_steps):
        ordered = sorted(res)
        best = max(ordered, key=lambda t: max(res[t].values()))
        if best == ordered[0]:
            new = ordered[0] / 3
        elif best == ordered[-1]:
            new = ordered[-1] * 3
        else:
            break
        res[new] = evaluate(new)
    return res


def search_levels(score, start, allowed, scores):
    """Best level count: ``start`` levels, extended by one while the best is at an edge.

    ``score(levels)`` returns (mean PSNR, tau); ``scores`` collects them.
    """
    for lev in start:
        scores[lev] = score(lev)
    while True:
        best = max(scores, key=lambda lev: scores[lev][0])
        new = best - 1 if best == min(scores) else best + 1 if best == max(scores) else None
        if new is None or new not in allowed:
            return best
        scores[new] = score(new)


def _at(run, images, ratio, fista, checkpoints, wavelet, levels, tau):
    return run(images, ratio, tau, fista, checkpoints, wavelet, levels)


def choose(results, tol):
    """(tau, iters, chosen PSNR, best PSNR): fewest iterations within tol dB of the best."""
    best = max(v for per_tau in results.values() for v in per_tau.values())
    ok = [(k, -v, tau) for tau, per_tau in results.items() for k, v in per_tau.items()
          if v >= best - tol]
    k, neg_v, tau = min(ok)
    return tau, k, -neg_v, best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scopes", default="block,image")
    ap.add_argument("--ratios", default=",".join(map(str, RATIOS)))
    ap.add_argument("--taus", default=",".join(map(str, TAUS)))
    ap.add_argument("--images", type=int, default=None, help="override the image count")
    ap.add_argument("--crop", type=int, default=None, help="override the crop size")
    ap.add_argument("--levels-iters", type=int, default=100)
    ap.add_argument("--tol", type=float, default=0.05, help="dB a longer run must gain")
    ap.add_argument("--out", default=None, help="write every mean PSNR as JSON here")
    a = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message="Level value of")  # pywt: deep levels, small crops

    taus = [float(t) for t in a.taus.split(",")]
    table, log = {}, {}
    for scope in a.scopes.split(","):
        wavelet = DEFAULT_WAVELET[scope]
        run = run_block if scope == "block" else run_image
        crop, n_images, step = IMAGES[scope]
        crop, n_images = a.crop or crop, a.images or n_images
        images = training_images(crop, n_images, step)
        print(f"{scope} scope, T91 images:", ", ".join(n for n, _ in images),
              f"(centre crop {crop})", flush=True)
        for ratio in (float(r) for r in a.ratios.split(",")):
            t0 = time.time()
            # stage 1: levels (FISTA)
            per_level = {}

            def score(lev, run=run, images=images, ratio=ratio, wavelet=wavelet, scope=scope):
                evaluate = partial(_at, run, images, ratio, True, (a.levels_iters,), wavelet, lev)
                res = search_tau(evaluate, taus)
                best_tau = max(res, key=lambda t: res[t][a.levels_iters])
                log[f"levels {scope} {ratio} {lev}"] = {str(t): r for t, r in res.items()}
                return res[best_tau][a.levels_iters], best_tau

            levels = search_levels(score, LEVELS[scope], LEVEL_RANGE[scope], per_level)
            tau1 = per_level[levels][1]
            print(f"{scope:5s} ratio {ratio:<5g} levels: " + "  ".join(
                f"{lev}:{v:.2f}dB(tau {t:.3g})" for lev, (v, t) in sorted(per_level.items()))
                + f" -> {levels}", flush=True)
            # stage 2: tau and iterations, per method
            for method, cps in CHECKPOINTS.items():
                fista = method == "fista-wavelet"
                evaluate = partial(_at, run, images, ratio, fista, cps, wavelet, levels)
                res = search_tau(evaluate, [tau1 / 3, tau1, tau1 * 3])
                tau, k, chosen, best = choose(res, a.tol)
                table.setdefault((method, scope), {})[ratio] = (tau, k, levels)
                log[f"{method} {scope} {ratio}"] = {str(t): r for t, r in res.items()}
                grid = "  ".join(f"{t:.3g}:{max(r.values()):.2f}" for t, r in sorted(res.items()))
                print(f"  {method:14s} -> tau {tau:.3g}, iters {k}: {chosen:.2f} dB "
                      f"(best {best:.2f})  [{grid}]", flush=True)
            print(f"  ({time.time() - t0:.0f} s)", flush=True)
    print("\nTUNED = {")
    for (method, scope), rows in table.items():
        body = ", ".join(f"{r:g}: ({t:.3g}, {k}, {lev})" for r, (t, k, lev) in rows.items())
        print(f'    ("{method}", "{scope}"): {{{body}}},')
    print("}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(log, f, indent=1)


if __name__ == "__main__":
    main()
