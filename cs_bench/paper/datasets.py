"""Other test sets: every Table 2 method at ratios 0.10, 0.25 and 0.40 on Set5, Set14 and
BSD100 (luminance), beside Set11, PSNR and SSIM.

Every method at block scope (the paper's protocol) with its zoo model of the ratio (a learned
method without one shows "no model"; the authors' released models with their own Phi and
Qinit, as in Tables 2 and 4). The slow solvers (D-AMP, NLR-CS: hours on BSD100's 100
481x321 images) run on a fixed subset of BSD100, its first :data:`SUBSET` images in sorted
order, and the table gives every method's mean on that subset beside the whole set, so all
are compared on the same images.

Outputs ``results/datasets.md`` (a table per ratio, mean PSNR / SSIM, and how far each set's
ranking of the methods agrees with Set11's), ``datasets.csv`` (a row per cell, then every
per-image row) and ``datasets.png``. ``cs-bench tables --only datasets`` makes them; see
:mod:`cs_bench.paper.beyond` for what is reused and computed.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..export import atomic_write_text, write_csv
from .beyond import (SLOW, assemble, budget_column, compute, count_images, label, label_rows,
                     long_csv, make_cell, not_run_text, per_image, previous_rows, say,
                     table2_rows)

RATIOS = (0.10, 0.25, 0.40)
#: BSD100's first images (sorted names) that the slow solvers run on
SUBSET = 10


@dataclass(frozen=True)
class ImageSet:
    """A column of the table: a dataset, all its images or the first ``first`` of them (or
    the named ``images``); ``slow``: whether the slow solvers run on it (False: their cells
    point to the subset column)."""

    label: str
    dataset: str
    first: int = 0
    images: tuple = ()
    slow: bool = True

    def names(self, data_dir=None):
        """The images of this column (None: all of the dataset)."""
        if self.images:
            return list(self.images)
        if self.first:
            from ..runner import resolve_images

            return [r.name for r in resolve_images(self.dataset, data_dir)][:self.first]
        return None


SETS = (ImageSet("Set11", "set11"), ImageSet("Set5", "set5"), ImageSet("Set14", "set14"),
        ImageSet("BSD100", "bsd100", slow=False),
        ImageSet(f"BSD100 (first {SUBSET})", "bsd100", first=SUBSET))


def make_datasets(out="results", data_dir=None, jobs=1, progress=True, figures=True,
                  cached_only=(), compute_slow=False, rows=None, sets=SETS, ratios=RATIOS):
    """Compute (what the cache and the earlier CSVs lack) and write the datasets part; one
    row per cell (method, test set, ratio). ``rows``: [(label, method, kind)] (default Table
    2's); methods in ``cached_only`` (and :data:`~.beyond.SLOW` unless ``compute_slow``) are
    not computed."""
    out = Path(out)
    rows = rows or table2_rows()
    skip = tuple(set(cached_only) | (set() if compute_slow else set(SLOW)))
    previous = previous_rows(out)
    frames, images = [], []
    for ts in sets:
        cells = [make_cell("datasets", lab, m, kind, r, ts.label) for lab, m, kind in rows
                 for r in ratios]
        names = ts.names(data_dir)
        if progress:
            say(f"datasets: {ts.label} ({len(names) if names else 'all'} images), "
                f"{len(rows)} methods at {', '.join(f'{r:g}' for r in ratios)}")
        runs = compute(cells, ts.dataset, images=names, slow_images=None if ts.slow else (),
                       data_dir=data_dir, jobs=jobs, progress=progress, cached_only=skip,
                       previous=previous)
        df = assemble(cells, runs).assign(dataset=ts.dataset, set=ts.label)
        if not ts.slow:
            slow = df.method.isin(SLOW)
            sub = next((s.label for s in sorted(sets, key=lambda s: not (s.first or s.images))
                        if s.dataset == ts.dataset and s.slow), "")
            df.loc[slow, ["psnr", "ssim", "seconds"]] = np.nan
            df.loc[slow, "note"] = f"see {sub}" if sub else "not run on this set"
        imgs = label_rows(per_image(runs), cells).assign(set=ts.label)
        frames.append(count_images(df, imgs, ["row", "ratio"]))
        images.append(imgs)
    df = pd.concat(frames, ignore_index=True)
    imgs = pd.concat(images, ignore_index=True)
    if not imgs.empty:  # a subset column's rows are the whole set's: each row once
        key = ["method", "params", "scope", "dataset", "image", "phi", "noise_sigma", "_r"]
        imgs = imgs.assign(_r=imgs.ratio.round(6)).drop_duplicates(key).drop(columns=["_r",
                                                                                     "set"])
    write_csv(long_csv(df, imgs), out / "datasets.csv")
    atomic_write_text(out / "datasets.md", datasets_markdown(df, sets, data_dir))
    if figures:
        datasets_figure(df, out / "datasets.png")
    return df


def _set_text(ts, data_dir):
    from ..runner import resolve_images

    try:
        refs = resolve_images(ts.dataset, data_dir, ts.names(data_dir))
    except Exception:
        return ts.label
    shapes = sorted({r.load().shape for r in refs}, key=lambda s: s[0] * s[1])
    size = (f"{shapes[0][1]}x{shapes[0][0]}" if len(shapes) == 1 else
            f"{shapes[0][1]}x{shapes[0][0]} to {shapes[-1][1]}x{shapes[-1][0]}")
    if ts.first:
        return (f"{ts.label}: {refs[0].name} to {refs[-1].name}, {len(refs)} images, "
                f"{size}")
    return f"{ts.label}: {len(refs)} images, {size}"


def ranking(df, reference=None):
    """How each test set ranks the methods against the reference set (default the first
    column), per ratio: Spearman's rho over the methods both have a mean for."""
    ref = reference or df.set.iloc[0]
    out = []
    for r, g in df.groupby("ratio", sort=True):
        piv = g.pivot_table(index="row", columns="set", values="psnr", sort=False)
        for s in dict.fromkeys(g.set):
            if s == ref or s not in piv or ref not in piv:
                continue
            both = piv[[ref, s]].dropna()
            rho = both[ref].rank().corr(both[s].rank()) if len(both) > 2 else np.nan
            best = both[s].idxmax() if len(both) else "—"
            out.append({"ratio": f"{r:g}", "test set": s, "methods": len(both),
                        f"Spearman rho with {ref}": "—" if np.isnan(rho) else f"{rho:.2f}",
                        "best here": best,
                        f"best on {ref} (same methods)": both[ref].idxmax() if len(both)
                        else "—"})
    return pd.DataFrame(out)


def datasets_markdown(df, sets=SETS, data_dir=None):
    cols = list(dict.fromkeys(df.set))
    parts = []
    for r, g in df.groupby("ratio", sort=True):
        text = [str(n) if n else ("—" if np.isnan(p) else f"{p:.2f} / {s:.4f}")
                for p, s, n in zip(g.psnr, g.ssim, g.note.fillna(""))]
        piv = g.assign(text=text).pivot_table(index="row", columns="set", values="text",
                                              aggfunc="first", sort=False)[cols]
        table = piv.reset_index().rename(columns={"row": "method"})
        table["source"] = table.method.map(g.drop_duplicates("row").set_index("row").source)
        budget = budget_column(g)
        table["training budget"] = table.method.map(budget)
        if table["training budget"].eq("").all():
            table = table.drop(columns="training budget")
        parts.append(f"## Ratio {r:.2f}\n\n"
                     + table.fillna("—").to_markdown(index=False, disable_numparse=True))
    rank = ranking(df)
    slow = ", ".join(label(m) for m in SLOW)
    sub = [s for s in sets if s.first]
    whole = [s.label for s in sets if not s.slow]
    sub_text = ""
    if sub and whole:
        s = sub[0]
        sub_text = (f" {slow} run on {s.label} only (a fixed subset: the first {s.first} images "
                    f"of {s.dataset} in sorted order; the whole set would cost them many hours "
                    f"on a 2-core CPU), so their {', '.join(whole)} cells point there; every "
                    f"method has a mean on that subset, so all are compared on the same images.")
    sets_text = "; ".join(_set_text(s, data_dir) for s in sets)
    return ("# Other test sets: mean PSNR (dB) / SSIM at ratios "
            + ", ".join(f"{r:.2f}" for r in sorted(df.ratio.unique())) + "\n\n"
            "Every method of Table 2 at block scope (the paper's protocol), on the luminance of "
            "each image (colour images converted as for Set11), each learned row with its zoo "
            "model of the ratio (*no model*: the zoo has none at that ratio) and the authors' "
            "released models with their own Phi and Qinit, as in Tables 2 and 4; Set11 is the "
            "paper's test set (the models and Phi of those tables). Cells: mean PSNR / mean SSIM "
            "(scikit-image, `data_range=255`). Per-image rows and every cell's image count: "
            "`datasets.csv`; figure: `datasets.png`. Test sets: " + sets_text + "."
            + sub_text + not_run_text(df, "datasets") + "\n\n"
            + "\n\n".join(parts)
            + "\n\n## Does the ranking hold?\n\nSpearman's rank correlation between each set's "
            "ranking of the methods (by mean PSNR) and Set11's, over the methods with a mean on "
            "both.\n\n" + (rank.to_markdown(index=False) if len(rank) else "—") + "\n")


def datasets_figure(df, path):
    """Mean PSNR per test set, a panel per ratio, a line per method."""
    from .. import plot
    from .beyond import save_figure

    plt = plot._plt()
    ratios = sorted(df.ratio.unique())
    sets = list(dict.fromkeys(df.set))
    fig, axes = plt.subplots(1, len(ratios), figsize=(4.2 * len(ratios) + 2.5, 4.6),
                             squeeze=False)
    cmap = plt.get_cmap("tab20")
    rows = list(dict.fromkeys(df.row))
    means = df.groupby("row", sort=False).psnr.mean().dropna()
    low = set(means[means < means.median() - 10].index)  # min-norm: named, not drawn
    for ax, r in zip(axes[0], ratios):
        g = df[np.isclose(df.ratio, r)]
        for i, row in enumerate(rows):
            h = g[g.row == row].set_index("set").reindex(sets)
            if h.psnr.notna().any() and row not in low:
                style = "-" if h.source.dropna().ne("").any() else "--"
                ax.plot(range(len(sets)), h.psnr, style, marker="o", ms=4,
                        color=cmap(i % 20), label=row)
        ax.set_xticks(range(len(sets)), sets, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"ratio {r:g}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("mean PSNR (dB)")
    handles = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    axes[0][-1].legend(handles.values(), handles.keys(), fontsize=7, loc="center left",
                       bbox_to_anchor=(1.01, 0.5))
    note = "; not drawn: " + ", ".join(sorted(low)) if low else ""
    fig.suptitle("Mean PSNR on each test set, block scope (solid: learned, dashed: "
                 f"classical{note})", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
