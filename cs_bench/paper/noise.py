"""Measurement noise: every Table 2 method at ratio 0.25 on Set11 under Gaussian noise.

y = Phi x + e with e ~ N(0, sigma^2) per measurement, x on the 0-1 pixel scale (the runner's
``noise``; one draw per image, noise seed 0), sigma in :data:`SIGMAS`, every method at block
scope (the paper's protocol) with its Table 2 model. No model here was trained with noise;
ReconNet's paper claims robustness to it, and this checks the claim for every method.

Outputs ``results/noise.md`` (mean PSNR against sigma, one row per method, with the training
budget and source of each learned row), ``noise.csv`` (a row per cell with SSIM, then every
per-image row) and ``noise.png`` (PSNR against sigma, one line per method). ``cs-bench tables
--only noise`` makes them; see :mod:`cs_bench.paper.beyond` for what is reused and computed.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from ..export import atomic_write_text, write_csv
from .beyond import (SLOW, budget_column, cell_text, compute, count_images, label_rows,
                     long_csv, make_cell, not_run_text, per_image, previous_rows, say,
                     table2_rows, assemble)

SIGMAS = (0.0, 0.005, 0.01, 0.02, 0.05)
RATIO = 0.25


def make_noise(out="results", dataset="set11", data_dir=None, jobs=1, progress=True,
               figures=True, cached_only=(), compute_slow=False, rows=None, sigmas=SIGMAS,
               ratio=RATIO, images=None):
    """Compute (what the cache and the earlier CSVs lack) and write the noise part; the
    table's cells (one row per method and sigma). ``rows``: [(label, method, kind)] (default
    Table 2's, :func:`~cs_bench.paper.beyond.table2_rows`); ``images``: a subset of the
    dataset's images; methods in ``cached_only`` (and :data:`~.beyond.SLOW` unless
    ``compute_slow``) are not computed."""
    out = Path(out)
    rows = rows or table2_rows()
    sigmas = tuple(float(s) for s in sigmas)
    cells = {s: [make_cell("noise", lab, m, kind, ratio, f"{s:g}") for lab, m, kind in rows]
             for s in sigmas}
    skip = set(cached_only) | (set() if compute_slow else set(SLOW))
    if progress:
        say(f"noise: {len(rows)} methods on {dataset} at ratio {ratio:g}, sigma "
            f"{', '.join(f'{s:g}' for s in sigmas)}")
    runs = compute(cells[sigmas[0]], dataset, noises=sigmas, images=images, data_dir=data_dir,
                   jobs=jobs, progress=progress, cached_only=tuple(skip),
                   previous=previous_rows(out))
    frames = []
    for s in sigmas:
        sel = runs[np.isclose(runs.noise_sigma.astype(float), s)] if not runs.empty else runs
        frames.append(assemble(cells[s], sel).assign(noise_sigma=s, dataset=dataset))
    df = pd.concat(frames, ignore_index=True)
    imgs = label_rows(per_image(runs), cells[sigmas[0]])
    df = count_images(df, imgs, ["row", "noise_sigma"])
    write_csv(long_csv(df, imgs), out / "noise.csv")
    atomic_write_text(out / "noise.md", noise_markdown(df, snr_db(dataset, data_dir, ratio,
                                                                  sigmas, images)))
    if figures:
        noise_figure(df, out / "noise.png")
    return df


def snr_db(dataset, data_dir, ratio, sigmas, images=None):
    """{sigma: mean measurement SNR (dB) over the images}: 10 log10(mean y^2 / sigma^2) with
    the harness Phi (seed 0)."""
    from ..problem import Problem
    from ..runner import resolve_images
    from ..sensing import make_phi

    Phi = make_phi(ratio, 0)
    power = [float(np.mean(Problem.from_image(r.load(), ratio, Phi=Phi).y ** 2))
             for r in resolve_images(dataset, data_dir, images)]
    return {s: float(np.mean([10 * np.log10(p / s ** 2) for p in power]))
            for s in sigmas if s > 0}


def noise_markdown(df, snr=None):
    cols = [c for c in dict.fromkeys(df.column)]
    piv = df.assign(text=df.apply(cell_text, axis=1)).pivot_table(
        index="row", columns="column", values="text", aggfunc="first", sort=False)[cols]
    psnr = df.pivot_table(index="row", columns="column", values="psnr", aggfunc="first",
                          sort=False, dropna=False)
    first, last = cols[0], cols[-1]
    change = {r: ("—" if r not in psnr.index or np.isnan(psnr.loc[r, first])
                  or np.isnan(psnr.loc[r, last]) else f"{psnr.loc[r, last] - psnr.loc[r, first]:+.2f}")
              for r in piv.index}
    table = piv.reset_index().rename(columns={"row": "method", **{c: f"σ = {c}" for c in cols}})
    table[f"change σ {first} → {last}"] = table.method.map(change)
    src = df.drop_duplicates("row").set_index("row").source
    table["source"] = table.method.map(src)
    budget = budget_column(df)
    table["training budget"] = table.method.map(budget)
    if table["training budget"].eq("").all():
        table = table.drop(columns="training budget")
    n = int(df.n_images.max()) if len(df) else 0
    ds = {"set11": "Set11"}.get(df.dataset.iloc[0], df.dataset.iloc[0]) if len(df) else ""
    ratio = df.ratio.iloc[0] if len(df) else RATIO
    snr_text = ""
    if snr:
        snr_text = (f" Mean measurement SNR over {ds} at this ratio (harness Phi): "
                    + ", ".join(f"σ {s:g}: {v:.1f} dB" for s, v in snr.items()) + ".")
    return (f"# Measurement noise: {ds} mean PSNR (dB) at ratio {ratio:g} against the noise "
            "level\n\n"
            f"Every method of Table 2 reconstructs each 33x33 block on its own (the paper's "
            f"protocol) from y = Phi x + e, e Gaussian with standard deviation σ per "
            f"measurement and x on the 0-1 pixel scale (one draw per image, noise seed 0). The "
            f"models are Table 2's at {ratio:g} (the authors' released ones with their own Phi "
            f"and Qinit); none was trained with noise. σ = 0 is Table 2's {ratio:g} setting. "
            f"Cells: mean PSNR over the {n} images; the change column is the PSNR lost from "
            f"the first to the last σ. SSIM per cell and every per-image row: `noise.csv`; "
            f"figure: `noise.png`." + snr_text + not_run_text(df, "noise") + "\n\n"
            + table.fillna("—").to_markdown(index=False, disable_numparse=True) + "\n")


def noise_figure(df, path):
    """PSNR against sigma (left) and the PSNR lost from sigma 0 (right), one line per method
    (solid: learned, dashed: classical); a method far below the rest (min-norm) is named
    rather than drawn, so the axis stays readable."""
    from .. import plot
    from .beyond import save_figure

    plt = plot._plt()
    fig, (ax, dx) = plt.subplots(1, 2, figsize=(12, 5))
    cmap = plt.get_cmap("tab20")
    means = df.groupby("row", sort=False).psnr.mean().dropna()
    low = set(means[means < means.median() - 10].index)
    sig = sorted(df.noise_sigma.unique())
    for i, (row, g) in enumerate(df.groupby("row", sort=False)):
        g = g.dropna(subset=["psnr"]).sort_values("noise_sigma")
        if g.empty or row in low:
            continue
        kw = dict(ls="-" if g.source.iloc[0] else "--", marker="o", ms=4, color=cmap(i % 20),
                  label=row)
        ax.plot(g.noise_sigma, g.psnr, **kw)
        if np.isclose(g.noise_sigma.iloc[0], sig[0]) and len(g) > 1:
            dx.plot(g.noise_sigma, g.psnr - g.psnr.iloc[0], **kw)
    for a in (ax, dx):
        a.set_xscale("symlog", linthresh=max(min([s for s in sig if s > 0] or [1e-3]), 1e-6))
        a.set_xticks(sig, [f"{s:g}" for s in sig])
        a.minorticks_off()
        a.set_xlabel("measurement noise σ (0-1 pixel scale; symlog axis)")
        a.grid(alpha=0.3)
    ax.set_ylabel("mean PSNR (dB)")
    dx.set_ylabel(f"PSNR change from σ = {sig[0]:g} (dB)")
    ds = {"set11": "Set11"}.get(df.dataset.iloc[0], df.dataset.iloc[0])
    note = ""
    if low:
        note = "; not drawn: " + ", ".join(f"{r} ({means[r]:.1f} dB)" for r in low)
    fig.suptitle(f"{ds}, ratio {df.ratio.iloc[0]:g}, block scope: PSNR against measurement "
                 f"noise (solid: learned, dashed: classical{note})", fontsize=10)
    dx.legend(*ax.get_legend_handles_labels(), fontsize=7, loc="center left",
              bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    save_figure(fig, path)
