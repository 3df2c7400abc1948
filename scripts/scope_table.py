"""Block scope against image scope for every classical method that has both (Set11).

    .venv/bin/python scripts/scope_table.py [--ratios 0.1,0.25,0.4] [--jobs 1]

Block scope reconstructs every 33 x 33 block on its own (the paper's protocol); image scope
reconstructs the whole image from the same block measurements (our extension). Writes
results/scope.csv, results/scope.md and results/scope.png.

Where the numbers come from:
* TVAL3, ISTA / FISTA (wavelet): computed here through the runner (its cache makes a rerun
  free);
* D-AMP and NLR-CS at both scopes: taken from the run cache only (``cached_only``), filled by
  ``scripts/run_block_scope.py`` (``--scope block`` / ``--scope image``); never computed here,
  as they cost minutes per image;
* D-AMP with the ``bm3d`` package's BM3D at image scope, the reference the batched BM3D
  replaced: results/damp_set11.csv.
A cell with no measurement says so; nothing is estimated.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from cs_bench.export import atomic_write_text
from cs_bench.registry import get_method
from cs_bench.runner import run

FAST = ["tval3", "ista-wavelet", "fista-wavelet"]
SLOW = ["d-amp", "nlr-cs"]
LABEL = {"tval3": "TVAL3", "ista-wavelet": "ISTA (wavelet)", "fista-wavelet": "FISTA (wavelet)",
         "d-amp": "D-AMP", "nlr-cs": "NLR-CS"}


def summarise(df, source):
    ok = df[df["error"].isna() | (df["error"] == "")]
    if "code" not in ok.columns:
        ok = ok.assign(code="")
    g = ok.groupby(["method", "scope", "ratio"]).agg(
        psnr=("psnr", "mean"), seconds=("seconds", "median"), images=("psnr", "size"),
        code=("code", "first")).reset_index()
    g["source"] = source
    return g


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratios", default="0.1,0.25,0.4")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--package-reference", default="results/damp_set11.csv",
                    help="D-AMP rows computed with the bm3d package's BM3D at image scope")
    ap.add_argument("--out", default="results/scope")
    ap.add_argument("--cached-only", action="store_true",
                    help="compute nothing, TVAL3 / ISTA / FISTA included: take the run cache")
    args = ap.parse_args()
    ratios = [float(r) for r in args.ratios.split(",")]
    parts = []
    for scope in ("block", "image"):
        ms = [get_method(m, scope=scope) for m in FAST]
        parts.append(summarise(run(ms, "set11", ratios=ratios, jobs=args.jobs,
                                   cached_only=args.cached_only), "runner"))
    for scope in ("block", "image"):
        slow = run([get_method(m, scope=scope) for m in SLOW], "set11", ratios=ratios,
                   cached_only=True)
        parts.append(summarise(slow, "run cache"))
    res = pd.concat(parts, ignore_index=True)
    ref = pd.read_csv(args.package_reference)
    ref = summarise(ref[ref["ratio"].isin(ratios)], args.package_reference)
    res = res[res["images"] == 11]  # a complete Set11 mean only
    out = Path(args.out)
    atomic_write_text(out.with_suffix(".csv"), res.to_csv(index=False, float_format="%.4f"))

    from cs_bench.runner import environment

    env = environment()
    cpu = f"{env['processor']} CPU, {env['cpus']} cores"
    head = "| method | " + " | ".join(f"{r:g} block | {r:g} image" for r in ratios) + " |"
    lines = ["# Block scope against image scope (Set11)", "",
             "Mean PSNR (dB) over the 11 Set11 images, and in brackets the median seconds per "
             f"image on {cpu} (shared with a trainer and other jobs). Block "
             "scope: every 33 x 33 block reconstructed on its own, the paper's protocol. Image "
             "scope: the whole image from the same block measurements (our extension). "
             "\"not measured\": no complete Set11 run of that cell exists yet; nothing is "
             "estimated. Made by `scripts/scope_table.py`.", "", head,
             "|---|" + "---:|" * (2 * len(ratios))]
    for m in FAST + SLOW:
        cells = []
        for r in ratios:
            for scope in ("block", "image"):
                row = res[(res.method == m) & (res.scope == scope) & np.isclose(res.ratio, r)]
                cells.append("not measured" if row.empty else
                             f"{row.psnr.iloc[0]:.2f} ({row.seconds.iloc[0]:.3g} s)")
        lines.append(f"| {LABEL[m]} | " + " | ".join(cells) + " |")
    ref = ref[ref["images"] == 11]
    package = ", ".join(f"{r.ratio:g}: {r.psnr:.2f} dB ({r.seconds:.3g} s)"
                        for r in ref.itertuples())
    lines += ["", "Sources: TVAL3, ISTA and FISTA computed through the runner; D-AMP (its default "
              "denoiser, the batched BM3D of baselines/bm3d_batch.py) and NLR-CS from the run "
              "cache, filled by `scripts/run_block_scope.py`; code hashes in scope.csv. D-AMP at "
              "image scope with the `bm3d` package's BM3D (profile lc) instead, the earlier "
              f"default: {package or 'not measured'} ({args.package_reference})."]
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, m in enumerate(FAST + SLOW):
        for scope, ls in (("block", "-"), ("image", "--")):
            d = res[(res.method == m) & (res.scope == scope)].sort_values("ratio")
            if len(d):
                ax.plot(d.ratio, d.psnr, ls, marker="o", color=f"C{i}",
                        label=f"{LABEL[m]}, {scope}")
    ax.set_xlabel("measurement ratio")
    ax.set_ylabel("mean PSNR on Set11 (dB)")
    ax.set_title("Block scope (solid) against image scope (dashed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=120)


if __name__ == "__main__":
    main()
