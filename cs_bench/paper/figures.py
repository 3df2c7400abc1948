"""The paper's figures: Fig. 5 (visual comparison), Fig. 6a (symmetric constraint),
Fig. 6b (number of feature maps) and PSNR against ratio for every method.

All plots use matplotlib's Agg backend and are written atomically (temp file + rename).
"""

from pathlib import Path

import numpy as np

from ..files import atomic_write


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight"), suffix=".png")
    _plt().close(fig)


def fig5_visual(cells_df, out, dataset="set11", data_dir=None, image="Parrots", ratio=0.25):
    """One Set11 image at 0.25 by SDA, ReconNet, ISTA-Net, FISTA-Net beside the original."""
    from ..data import image_refs
    from ..metrics import psnr
    from ..problem import Problem
    from ..registry import get_method

    ref = next(r for r in image_refs(dataset, data_dir) if r.name == image)
    img = ref.load()
    prob = Problem.from_image(img, ratio, name=image)
    panels = [("Original", img, None)]
    t2 = cells_df[(cells_df.table == "table2") & np.isclose(cells_df.ratio, ratio)]
    for label in ("SDA", "ReconNet", "ISTA-Net", "FISTA-Net"):
        c = t2[t2.row == label].iloc[0]
        if c.note == "not trained":
            panels.append((f"{label}\n(not trained)", np.zeros_like(img), None))
            continue
        import json

        rec = get_method(c.method, **json.loads(c.params)).reconstruct(prob)
        panels.append((label, rec, psnr(img, rec)))
    plt = _plt()
    fig, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.4))
    for ax, (label, im, p) in zip(axes, panels):
        ax.imshow(np.clip(im, 0, 1), cmap="gray", vmin=0, vmax=1)
        ax.set_title(label if p is None else f"{label}\n{p:.2f} dB", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"Fig. 5: {image}, ratio {ratio:g}", fontsize=10)
    _save(fig, Path(out) / "fig5_visual.png")


def _bars(df, groups, series, title, path, xlabel=""):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for i, s in enumerate(series):
        vals = [df[(df.row == g) & (df.column == s)].psnr.mean() for g in groups]
        ax.bar(x + i * width - 0.4 + width / 2, np.nan_to_num(vals), width, label=s)
        for xi, v in zip(x, vals):
            if np.isnan(v):
                ax.text(xi + i * width - 0.4 + width / 2, 0.5, "not\ntrained", ha="center",
                        fontsize=6, rotation=90)
    ax.set_xticks(x, groups)
    ax.set_ylabel("Set11 PSNR (dB)")
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    finite = df.psnr.dropna()
    if len(finite):
        ax.set_ylim(max(0, finite.min() - 2), finite.max() + 1)
    _save(fig, path)


def fig6a(cells_df, out):
    df = cells_df[cells_df.table == "fig6a"]
    _bars(df, ["ISTA-Net", "FISTA-Net", "ISTA-Net*", "FISTA-Net*"], ["gamma=0.01", "gamma=0"],
          "Fig. 6a: with and without the symmetric constraint (Np = 11, ratio 0.25)",
          Path(out) / "fig6a_symmetric.png")


def fig6b(cells_df, out):
    df = cells_df[cells_df.table == "fig6b"]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    nf = [int(c.split("=")[1]) for c in df.column]
    ax.plot(nf, df.psnr, "o-")
    for n, v in zip(nf, df.psnr):
        if np.isnan(v):
            ax.annotate("not trained", (n, 0), fontsize=7, rotation=90)
    ax.set_xlabel("feature maps Nf")
    ax.set_ylabel("Set11 PSNR (dB)")
    ax.set_title("Fig. 6b: ISTA-Net against Nf (ratio 0.25)", fontsize=10)
    _save(fig, Path(out) / "fig6b_nf.png")


def _series(method, params, ratio):
    """The line of ``psnr_vs_ratio`` a (method, params, ratio) result belongs to, or None.

    A classical method is one line. A learned one has one weights file per ratio, so its
    line joins the Tier 1 models each trained for the ratio it runs at; a model run at
    other ratios than its own (the paper's ISTA-Net0.4) is a line of its own, and the
    ablation models (Tier 2, Tables 1 and 3, Fig. 6) are left to their own figures.

    >>> _series("tval3", "{}", 0.1)
    'TVAL3'
    >>> _series("ista-net", '{"weights": "ista-net_r0.4_np9_nf32"}', 0.4)
    'ISTA-Net'
    >>> _series("ista-net", '{"weights": "ista-net_r0.4_np9_nf32"}', 0.2)
    'ISTA-Net0.4'
    >>> _series("ista-net", '{"weights": "ista-net_r0.25_np7_nf32_t2"}', 0.25) is None
    True
    """
    import json

    from .labels import label as _label
    from .zoo import _BY_NAME

    label = _label(method)
    w = json.loads(params).get("weights")
    if not w:
        return label
    if w.startswith("release-"):  # the authors' release: its own Phi where it has one
        return _release_series(label, w, ratio)
    e = _BY_NAME.get(w)
    if e is None:  # user weights: their own line
        return f"{label} ({w})"
    if e.tier != 1:
        return None
    return label if abs(e.ratio - ratio) < 1e-9 else f"{label}{e.ratio:g}"


def _release_series(label, weights, ratio):
    """One line per released network at the ratios it was trained for: with the release's
    own Phi, or with the harness Phi where the release has none (50 %).

    >>> _release_series("ISTA-Net+", "release-ista-net-plus_r0.25", 0.25)
    "ISTA-Net+ (authors' release)"
    >>> _release_series("ISTA-Net", "release-ista-net_r0.25_phi-ours", 0.25) is None
    True
    """
    import re

    from ..learned.release import has_own_phi

    m = re.search(r"_r([0-9.]+)(_phi-ours)?$", weights)
    if not m or abs(float(m.group(1)) - ratio) > 1e-9:
        return None
    if m.group(2) and has_own_phi(ratio):
        return None
    return f"{label} (authors' release)"


def psnr_vs_ratio(runs, out):
    """Every method's mean PSNR against the ratio, from every run made for the tables."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.6))
    if not runs.empty:
        ok = runs[runs.error.isna()]
        keys = list(zip(ok.method, ok.params, ok.ratio))
        names = {k: _series(*k) for k in set(keys)}
        ok = ok.assign(series=[names[k] for k in keys]).dropna(subset=["series"])
        learned = set(ok.series[ok.params.str.contains('"weights"')])
        colours = plt.get_cmap("tab20").colors  # pairs: a dark and a light of each hue
        for i, (label, g) in enumerate(ok.groupby("series", sort=True)):
            m = g.groupby("ratio").psnr.mean()
            style = "s--" if label in learned else "o-"
            ax.plot(m.index, m.values, style, label=label, markersize=3,
                    color=colours[(2 * i) % 20 + (i >= 10)])  # the dark ones first
    ax.set_xlabel("sampling ratio")
    ax.set_ylabel("Set11 mean PSNR (dB)")
    ax.set_title("PSNR against ratio (dashed: learned)", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    _save(fig, Path(out) / "psnr_vs_ratio.png")


def write_all(cells_df, runs, out, dataset="set11", data_dir=None):
    """Every figure whose cells are in ``cells_df`` (Fig. 5 comes from Table 2's cells)."""
    have = set(cells_df.table)
    if "table2" in have:
        fig5_visual(cells_df, out, dataset, data_dir)
    if "fig6a" in have:
        fig6a(cells_df, out)
    if "fig6b" in have:
        fig6b(cells_df, out)
    if not runs.empty:
        psnr_vs_ratio(runs, out)
