"""Figures of any results CSV: ``cs-bench plot RESULTS.csv``.

Three figures, each as PNG and SVG beside the CSV (or in ``--out``):

* ``<stem>_psnr_vs_ratio``: mean PSNR against the ratio per method, a band of one standard
  deviation across images and every image as a faint dot;
* ``<stem>_psnr_vs_seconds``: mean PSNR against mean reconstruction seconds (log scale), one
  point per (method, ratio), the Pareto front of each ratio (nothing both faster and
  better) drawn and its points ringed;
* ``<stem>_per_image``: PSNR per image, one bar per method, one panel per ratio.

The functions take a long-format DataFrame (the columns :func:`cs_bench.runner.run` writes)
and an optional matplotlib ``Axes``, so other figures (the paper's) reuse them:

>>> import pandas as pd
>>> df = pd.DataFrame({"method": ["a", "a", "b", "b"], "ratio": [0.1, 0.25, 0.1, 0.25],
...                    "image": ["x"] * 4, "psnr": [20.0, 25.0, 22.0, 24.0],
...                    "seconds": [1.0, 1.0, 0.1, 0.1]})
>>> sorted(pareto_front(points(df)).query("ratio == 0.25").method)
['a', 'b']
>>> list(pareto_front(points(df)).query("ratio == 0.1").method)
['b']
"""

from pathlib import Path

from .errors import CSBenchError
from .files import atomic_write

#: The columns a results CSV needs for the plots.
NEEDED = ("method", "ratio", "image", "psnr", "seconds")
FORMATS = ("png", "svg")
FIGURES = ("psnr_vs_ratio", "psnr_vs_seconds", "per_image")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, stem, formats=FORMATS, dpi=110):
    """Write ``fig`` as ``stem.png`` / ``stem.svg`` atomically, with the umask's mode; the paths.

    The files are reproducible: no date in the SVG, a fixed SVG id salt.
    """
    import matplotlib

    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        meta = {"Date": None} if fmt == "svg" else {"Software": None} if fmt == "png" else {}

        def write(tmp, fmt=fmt, meta=meta):
            with matplotlib.rc_context({"svg.hashsalt": "cs-bench"}):
                fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=fmt, metadata=meta)

        atomic_write(path, write, suffix=f".{fmt}")
        paths.append(path)
    _plt().close(fig)
    return paths


# -- data ---------------------------------------------------------------------------------
def read_results(path):
    """A results CSV as a DataFrame of its successful rows; one-line errors for bad files."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise CSBenchError(f"no results file {path}")
    try:
        df = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise CSBenchError(f"{path}: not a CSV file ({str(exc).splitlines()[0][:100]})") from None
    missing = [c for c in NEEDED if c not in df.columns]
    if missing:
        raise CSBenchError(f"{path}: not a cs-bench results CSV (no column "
                           f"{', '.join(missing)}); write one with 'cs-bench run ... --out FILE'")
    for col in ("ratio", "psnr", "seconds"):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            raise CSBenchError(f"{path}: column {col} holds {str(df[col][bad].iloc[0])!r}, "
                               "not a number")
        df[col] = values
    return successful(df, path)


def successful(df, name="the results"):
    """The rows without an error and with a PSNR; a one-line error when none are left."""
    ok = df[df["error"].isna()] if "error" in df.columns else df
    ok = ok.dropna(subset=["psnr"])
    if ok.empty:
        raise CSBenchError(f"{name}: no successful reconstruction to plot")
    return ok.assign(series=series_labels(ok))


def _params(text, method, ratio):
    """A row's parameters as a dict, its learned weights left out when they are the default
    ones for its ratio (so one learned method at several ratios is one line)."""
    import json
    import re

    try:
        p = json.loads(text) if isinstance(text, str) and text.strip() else {}
    except ValueError:
        return {"params": str(text)}
    if not isinstance(p, dict):
        return {"params": str(text)}
    w = p.get("weights")
    if isinstance(w, str) and re.fullmatch(rf"{re.escape(str(method))}_r{float(ratio):g}"
                                           r"(_np9_nf32)?", w):
        p.pop("weights")
    return p


def series_labels(df):
    """One label per row: the method, with the scope, noise and parameters in which the rows
    of that method differ (so every line is one setting); a learned method's default weights
    for each ratio make one line.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"method": ["ista-net"] * 3, "ratio": [0.1, 0.25, 0.25],
    ...     "params": ['{"weights": "ista-net_r0.1_np9_nf32"}', '{"weights": "ista-net_r0.25_np9_nf32"}',
    ...                '{"weights": "ista-net_r0.25_np7_nf32_t2"}']})
    >>> series_labels(df)
    ['ista-net', 'ista-net', 'ista-net ista-net_r0.25_np7_nf32_t2']
    """
    extra = [c for c in ("scope", "noise_sigma") if c in df.columns]
    rows = []
    for _, r in df.iterrows():
        d = _params(r["params"], r["method"], r["ratio"]) if "params" in df.columns else {}
        d = {k: str(v) for k, v in d.items()}
        d.update({f"@{c}": str(r[c]) for c in extra})
        rows.append((str(r["method"]), d))
    varying = {}
    for method in {m for m, _ in rows}:
        ds = [d for m, d in rows if m == method]
        keys = set().union(*ds)
        varying[method] = sorted(k for k in keys if len({d.get(k, "") for d in ds}) > 1)
    out = []
    for method, d in rows:
        parts = []
        for k in varying[method]:
            v = d.get(k, "")
            if k == "weights":
                parts.append(v)  # empty: the default weights of the ratio
            elif k == "@noise_sigma":
                parts.append(f"sigma={float(v):g}")
            elif k == "@scope":
                parts.append(v)
            elif v:
                parts.append(f"{k}={v}")
        out.append(" ".join([method] + [x for x in parts if x]))
    return out


def points(df):
    """Mean PSNR and seconds per (series, method, ratio), with the image count and the
    standard deviation across images."""
    if "series" not in df.columns:
        df = df.assign(series=df["method"])
    g = df.groupby(["series", "method", "ratio"])
    out = g.agg(psnr=("psnr", "mean"), psnr_std=("psnr", "std"), psnr_min=("psnr", "min"),
                psnr_max=("psnr", "max"), seconds=("seconds", "mean"), images=("psnr", "size"))
    return out.reset_index().fillna({"psnr_std": 0.0})


def pareto_front(pts):
    """The points of each ratio that no other point of that ratio beats on both PSNR (higher)
    and seconds (lower), sorted by seconds."""
    keep = []
    for _, g in pts.groupby("ratio"):
        best = float("-inf")
        for i, r in g.sort_values(["seconds", "psnr"], ascending=[True, False]).iterrows():
            if r["psnr"] > best:
                keep.append(i)
                best = r["psnr"]
    return pts.loc[keep].sort_values(["ratio", "seconds"])


def _colours(names):
    plt = _plt()
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {n: cmap(i % cmap.N) for i, n in enumerate(sorted(names))}


# -- figures ------------------------------------------------------------------------------
def _legend(ax, n, **kw):
    """Inside the axes for a few entries, beside them for many."""
    if n <= 10:
        ax.legend(fontsize=7, **kw)
    else:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  ncol=1 + n // 30, **kw)


def psnr_vs_ratio(df, ax=None, title=None):
    """Mean PSNR against ratio per series; band: +-1 std across images; dots: each image."""
    plt = _plt()
    df = df if "series" in df.columns else df.assign(series=series_labels(df))
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 4.4))
    pts = points(df)
    colours = _colours(pts.series.unique())
    for name, g in pts.groupby("series"):
        g = g.sort_values("ratio")
        c = colours[name]
        n = int(g.images.max())
        ax.plot(g.ratio, g.psnr, "o-", color=c, markersize=3, label=f"{name} ({n} img)")
        ax.fill_between(g.ratio, g.psnr - g.psnr_std, g.psnr + g.psnr_std, color=c, alpha=0.15,
                        linewidth=0)
        each = df[df.series == name]
        ax.scatter(each.ratio, each.psnr, s=5, color=c, alpha=0.35, linewidths=0)
    ax.set_xlabel("sampling ratio")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title or "PSNR against ratio (band: +-1 std across images; dots: images)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    _legend(ax, len(colours))
    return fig


def psnr_vs_seconds(df, ax=None, title=None):
    """Mean PSNR against mean seconds per image (log), one marker shape per ratio; each
    ratio's Pareto front drawn as a dashed line through its ringed points."""
    plt = _plt()
    df = df if "series" in df.columns else df.assign(series=series_labels(df))
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 4.4))
    pts = points(df)
    colours = _colours(pts.series.unique())
    shapes = dict(zip(sorted(pts.ratio.unique()), "os^Dv<>ph*"))
    for _, r in pts.iterrows():
        ax.scatter(max(r.seconds, 1e-6), r.psnr, color=colours[r.series],
                   marker=shapes.get(r.ratio, "o"), s=28, zorder=3)
    front = pareto_front(pts)
    for _, g in front.groupby("ratio"):
        ax.plot(g.seconds.clip(lower=1e-6), g.psnr, "--", color="0.4", linewidth=0.8, zorder=2,
                drawstyle="steps-post")
        ax.scatter(g.seconds.clip(lower=1e-6), g.psnr, s=110, facecolors="none",
                   edgecolors="0.2", linewidths=0.8, zorder=4)
    handles = [plt.Line2D([], [], color=c, marker="o", linestyle="", label=n)
               for n, c in colours.items()]
    handles += [plt.Line2D([], [], color="0.3", marker=m, linestyle="", label=f"ratio {r:g}")
                for r, m in shapes.items()]
    handles.append(plt.Line2D([], [], color="0.4", linestyle="--", marker="o",
                              markerfacecolor="none", label="Pareto front"))
    ax.set_xscale("log")
    ax.set_xlabel("seconds per image (mean, log scale)")
    ax.set_ylabel("mean PSNR (dB)")
    ax.set_title(title or "PSNR against time (ringed: the Pareto front of each ratio)",
                 fontsize=10)
    ax.grid(alpha=0.3, which="both")
    _legend(ax, len(handles), handles=handles)
    return fig


def per_image_bars(df, ratios=None, title=None):
    """PSNR of every image, one bar per series, one panel per ratio."""
    import numpy as np

    plt = _plt()
    df = df if "series" in df.columns else df.assign(series=series_labels(df))
    ratios = sorted(df.ratio.unique()) if ratios is None else list(ratios)
    images = sorted(df.image.astype(str).unique())
    series = sorted(df.series.unique())
    colours = _colours(series)
    width = max(6.0, 0.35 * len(images) * max(1, len(series)) ** 0.5 + 2)
    fig, axes = plt.subplots(len(ratios), 1, figsize=(min(width, 18), 2.6 * len(ratios) + 0.6),
                             squeeze=False)
    bar = 0.8 / max(1, len(series))
    x = np.arange(len(images))
    for ax, ratio in zip(axes[:, 0], ratios):
        at = df[np.isclose(df.ratio, ratio)]
        for i, s in enumerate(series):
            vals = at[at.series == s].groupby(at.image.astype(str)).psnr.mean()
            ax.bar(x + (i - (len(series) - 1) / 2) * bar, [vals.get(im, np.nan) for im in images],
                   bar, color=colours[s], label=s)
        ax.set_xticks(x, images, rotation=30 if len(images) > 6 else 0, ha="right"
                      if len(images) > 6 else "center", fontsize=8)
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(f"ratio {ratio:g}", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
        finite = at.psnr.dropna()
        if len(finite):
            ax.set_ylim(max(0.0, finite.min() - 3), finite.max() + 4)  # room: legend
    if len(series) <= 10:
        axes[0, 0].legend(fontsize=7, ncol=min(4, len(series)))
    else:
        _legend(axes[0, 0], len(series))
    fig.suptitle(title or "PSNR per image", fontsize=10)
    fig.tight_layout()
    return fig


def plot_results(df, out_dir, stem="results", formats=FORMATS):
    """Every figure of ``df`` into ``out_dir`` as ``<stem>_<figure>.<format>``; the paths."""
    df = df if "series" in df.columns else successful(df)
    out = Path(out_dir)
    paths = []
    paths += save(psnr_vs_ratio(df), out / f"{stem}_psnr_vs_ratio", formats)
    paths += save(psnr_vs_seconds(df), out / f"{stem}_psnr_vs_seconds", formats)
    paths += save(per_image_bars(df), out / f"{stem}_per_image", formats)
    return paths


# -- the command --------------------------------------------------------------------------
def cmd_plot(args):
    formats = [f.strip().lower() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if not formats or bad:
        raise CSBenchError(f"--format {args.format!r}: give png, svg or pdf, comma-separated "
                           "(default png,svg)")
    df = read_results(args.results)
    src = Path(args.results)
    out = Path(args.out) if args.out else src.parent
    if out.exists() and not out.is_dir():
        raise CSBenchError(f"--out {out}: not a folder")
    for p in plot_results(df, out, stem=args.stem or src.stem, formats=formats):
        print(p)
    return 0


def add_commands(sub):
    s = sub.add_parser(
        "plot", help="plot a results CSV: PSNR against ratio and seconds, per-image bars",
        description="Draw PSNR against ratio (with the spread across images), PSNR against "
                    "seconds (with the Pareto front) and per-image bars from a results CSV "
                    "('cs-bench run ... --out FILE'). Example: cs-bench plot results/run.csv")
    s.add_argument("results", metavar="RESULTS.csv", help="a CSV written by 'cs-bench run --out'")
    s.add_argument("--out", metavar="DIR", help="folder for the figures (default: the CSV's)")
    s.add_argument("--stem", help="file name prefix (default: the CSV's name without .csv)")
    s.add_argument("--format", default="png,svg",
                   help="comma-separated formats: png, svg, pdf (default: png,svg)")
    s.set_defaults(func=cmd_plot)
