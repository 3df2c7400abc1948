"""What the "beyond the paper" parts share (:mod:`.noise`, :mod:`.datasets`).

Both run Table 2's methods (the paper's rows, the authors' released models and our
references) at block scope, each learned cell naming its zoo model and training budget as the
paper tables do (:func:`cs_bench.paper.tables.assemble`). Their per-image rows are kept in the
parts' own CSVs (``results/noise.csv``, ``results/datasets.csv``) with the ``code`` column (the
hash of the method's source), so a later ``make tables`` takes every row computed by the same
code from there (:func:`cs_bench.paper.tables.reuse_rows`) or from the run cache, and computes
only what is missing. The slow solvers (:data:`SLOW`, hours on these sets) are never computed
by ``make tables``: their missing cells say "not run" and name :data:`SLOW_COMMAND`, which
computes them.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import published as paper
from .labels import CLASSICAL, EXTRA, LEARNED_LABELS, label
from .zoo import find

#: solvers that cost minutes per image (D-AMP ~10-100 s, NLR-CS ~270 s per 256 x 256 image
#: at block scope): the beyond-the-paper parts only compute them when asked
SLOW = ("d-amp", "nlr-cs")
SLOW_COMMAND = "make beyond-slow"
SLOW_CLI = "cs-bench tables --only noise,datasets --compute-slow"
#: the parts' own CSVs: the per-image rows a later run takes again (same code)
OWN_CSVS = ("noise.csv", "datasets.csv")
NO_MODEL = "no model"


def say(msg):
    print(msg, flush=True)


def table2_rows():
    """[(row label, method, kind)] of Table 2 in its order; kind is "classical", "learned"
    (a zoo model of the cell's ratio) or "release" (the authors' released model)."""
    from .tables import RELEASE_ROWS

    by_label = {v: k for k, v in LEARNED_LABELS.items()}
    rows = [(lab, CLASSICAL[lab], "classical") if lab in CLASSICAL
            else (lab, by_label[lab], "learned") for lab in paper.TABLE2]
    rows += [(lab, m, "release") for lab, (m, _) in RELEASE_ROWS.items()]
    rows += [(lab, m, "classical") for lab, m in EXTRA.items()]
    return rows


def make_cell(table, row, method, kind, ratio, column):
    """The :class:`~cs_bench.paper.tables.Cell` of ``row`` at ``ratio``: a learned row names
    its zoo model of that ratio (``"no model at R"`` where the zoo has none); a release row
    the released model with its own Phi where the release has one (as in Tables 2 and 4)."""
    from .tables import Cell, _release_cell

    if kind == "classical":
        return Cell(table, row, column, method, ratio)
    if kind == "release":
        c = _release_cell(table, row, method, ratio, float("nan"))
        c.column = column
        return c
    e = find(method, ratio)
    weights = e.name if e is not None else f"{NO_MODEL} at {ratio:g}"
    return Cell(table, row, column, method, ratio, params={"weights": weights})


def previous_rows(out):
    """Per-image rows computed earlier that a run may take again when the same code made them:
    ``out/all_runs.csv`` (the paper tables' Set11 runs) and the parts' own CSVs."""
    frames = []
    for name in ("all_runs.csv",) + OWN_CSVS:
        p = Path(out) / name
        if p.is_file():
            df = pd.read_csv(p, dtype={"params": str, "code": str, "image": str,
                                       "weights_id": str, "phi": str})
            if "code" in df and "error" in df:
                frames.append(df[df.image.ne("mean") & df.code.notna()])
    return pd.concat(frames, ignore_index=True) if frames else None


def compute(cells, dataset, noises=(0.0,), images=None, slow_images=None, data_dir=None,
            jobs=1, progress=True, cached_only=(), previous=None, log=None):
    """Per-image rows of every cell on ``dataset`` (optionally only ``images``) at every
    noise sigma: from the run cache, else from ``previous`` where the same code made them,
    else computed, except for methods in ``cached_only`` (their missing rows stay
    NOT_CACHED). ``slow_images``: the images the methods of :data:`SLOW` run on (default
    ``images``; ``()``: none)."""
    from ..learned import release as rel
    from ..runner import NOT_CACHED, run
    from .tables import reuse_rows, runnable_groups

    log = log or say
    groups = runnable_groups(cells)
    frames = []
    for i, (method, params, phi, scope, ratios) in enumerate(groups):
        imgs = images
        if method in SLOW and slow_images is not None:
            imgs = slow_images
            if not len(imgs):
                continue

        def go(cached, rs, ims, sigmas):
            kw = dict(jobs=jobs, data_dir=data_dir, params={method: params}, scope=scope,
                      images=list(ims) if ims is not None else None, noise=list(sigmas),
                      cached_only=cached, progress=progress and not cached)
            if phi:  # a released model with its own Phi: one Phi file, one ratio
                (r,) = rs
                return run([method], dataset, [r], phi_path=str(rel.get(phi)), **kw).assign(
                    ratio=r)
            return run([method], dataset, sorted(rs), **kw)

        df = go(True, ratios, imgs, noises)
        if previous is not None and not previous.empty:
            df = reuse_rows(df, previous)
        todo = df[df.error == NOT_CACHED]
        compute_now = len(todo) and method not in cached_only
        if progress:
            what = (f"computing {len(todo)}" if compute_now else
                    f"{len(todo)} not run (cached-only)" if len(todo) else "nothing to compute")
            log(f"[{i + 1}/{len(groups)}] {dataset}: {label(method)} "
                f"{params.get('weights', '')} at {', '.join(f'{r:g}' for r in sorted(ratios))}: "
                f"{len(df) - len(todo)} of {len(df)} results cached, {what}")
        if compute_now:
            done = [df[df.error != NOT_CACHED]]
            for (r, s), g in todo.groupby(["ratio", "noise_sigma"]):
                done.append(go(False, [r], sorted(g.image), [s]))
            df = pd.concat(done, ignore_index=True)
        frames.append(df)
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    return df.drop(columns="reused") if "reused" in df else df


def assemble(cells, runs):
    """One row per cell (:func:`cs_bench.paper.tables.assemble`) plus ``source``; a learned
    cell whose ratio has no zoo model says so."""
    from .tables import assemble as _assemble

    from ..runner import COLUMNS

    if runs.empty:
        runs = pd.DataFrame(columns=COLUMNS)
    df = _assemble(cells, runs)
    w = df.params.map(lambda p: str(json.loads(p).get("weights", "")))
    no = w.str.startswith(NO_MODEL)
    df.loc[no, "note"] = [f"no {r:g} model" for r in df.ratio[no]]
    df["source"] = np.where(w.str.startswith("release-"), "the authors' release",
                            np.where(w.ne(""), "ours", ""))
    return df


def cell_text(r, digits=2, value="psnr"):
    """A cell: the value, or why there is none."""
    if r.note:
        return str(r.note)
    v = r[value]
    return "—" if v is None or np.isnan(v) else f"{v:.{digits}f}"


def budget_column(df):
    """{row: training budget text} as the paper tables show it."""
    from .tables import _budget_text

    return {row: _budget_text(g.assign(column=g.ratio.map(lambda r: f"{r:g}")))
            for row, g in df.groupby("row", sort=False)}


def per_image(runs):
    """The per-image rows to write: the run rows less those not run, one row per result."""
    from ..runner import NOT_CACHED

    if runs.empty:
        return runs
    runs = runs[runs.error.ne(NOT_CACHED) | runs.error.isna()]
    key = ["method", "params", "scope", "dataset", "image", "phi", "noise_sigma"]
    runs = runs.assign(_r=runs.ratio.round(6))
    return runs.drop_duplicates(subset=key + ["_r"]).drop(columns="_r").reset_index(drop=True)


#: the parts a full ``make tables`` computes missing rows for (the others it makes from cached
#: rows only: the datasets part costs CPU-hours; ``make beyond`` computes it)
COMPUTED_BY_TABLES = ("noise",)


def not_run_text(df, part):
    """The sentence naming the commands that fill the cells not run yet ("" if none)."""
    notes = df.note.fillna("").astype(str)
    missing = notes.str.contains("not run")
    if not missing.any():
        return ""
    slow = sorted({label(m) for m in df.method[missing] if m in SLOW})
    other = sorted({label(m) for m in df.method[missing] if m not in SLOW})
    parts = []
    if other:
        also = "`make tables`" if part in COMPUTED_BY_TABLES else "`make beyond`"
        parts.append(f"{', '.join(other)}: `cs-bench tables --only {part}` (or {also}) "
                     "computes them")
    if slow:
        parts.append(f"{', '.join(slow)}: `{SLOW_COMMAND}` (`{SLOW_CLI}`) computes them; "
                     "`make tables` never does (hours on a 2-core CPU)")
    return (" Cells marked *not run* are results not computed yet (never estimated): "
            + "; ".join(parts) + ".")


def cost_text(runs):
    """What the rows cost to compute (sum of per-image seconds)."""
    if runs.empty or "seconds" not in runs:
        return ""
    s = runs.seconds.sum()
    return f"{s / 60:.0f} CPU-minutes"


def save_figure(fig, path):
    from .. import plot

    plot.save(fig, Path(path).with_suffix(""), formats=("png",))


def label_rows(runs, cells):
    """``runs`` with ``row``: the table row each per-image row belongs to (as
    :func:`cs_bench.paper.tables.assemble` selects a cell's runs)."""
    from .tables import _same

    row = pd.Series("", index=runs.index, dtype=object)
    if runs.empty:
        return runs.assign(row=row)
    own = ~runs.phi.astype(str).str.startswith("seed:")
    for c in {(c.row, c.method, json.dumps(c.params, sort_keys=True), bool(c.phi), c.scope,
               round(c.ratio, 6)): c for c in cells}.values():
        sel = (runs.method == c.method) & runs.params.map(lambda p: _same(p, c.params)) \
            & (runs.scope == c.scope) & (own == bool(c.phi)) & np.isclose(runs.ratio, c.ratio)
        row[sel] = c.row
    return runs.assign(row=row)


#: the order of the CSVs' columns (others follow)
CSV_FIRST = ["row", "method", "dataset", "image", "ratio", "noise_sigma", "psnr", "ssim",
             "n_images", "seconds", "note", "source", "epochs", "train_device", "train_hours",
             "init_from", "params", "scope", "phi"]


def long_csv(means, images):
    """One CSV: a row per cell (``image`` = "mean", with ``n_images``, the budget and the
    note) then every per-image row (the runner's columns)."""
    both = pd.concat([means.assign(image="mean"), images], ignore_index=True)
    cols = [c for c in CSV_FIRST if c in both] + [c for c in both if c not in CSV_FIRST]
    drop = [c for c in ("table", "column", "paper_psnr", "diff") if c in cols]
    return both[cols].drop(columns=drop)


def count_images(means, images, keys):
    """``means`` with ``n_images``: the successful per-image rows behind each cell (``keys``:
    the columns that tell the cells apart; ``ratio`` and ``noise_sigma`` compared rounded)."""
    if images.empty:
        return means.assign(n_images=0)

    def keyed(df):
        df = df.copy()
        for c in ("ratio", "noise_sigma"):
            if c in keys:
                df[c] = df[c].astype(float).round(6)
        return df

    ok = keyed(images[images.error.isna()])
    n = ok.groupby(keys).size()
    m = keyed(means)
    idx = pd.MultiIndex.from_frame(m[keys]) if len(keys) > 1 else m[keys[0]]
    return means.assign(n_images=n.reindex(idx).fillna(0).astype(int).to_numpy())
