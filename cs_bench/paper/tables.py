"""``make tables``: every table and figure of the ISTA-Net / FISTA-Net paper into results/.

Each table is a list of cells (row, column, method, params, ratio, the paper's value).
All cells are computed through :func:`cs_bench.runner.run`, so the run cache makes a second
``make tables`` take seconds. Learned cells name a zoo model (:mod:`cs_bench.paper.zoo`); a model
that is not trained yet shows as "not trained" rather than a number, and the budget of the
ones that are (epochs, device, wall time) is read from their weights' metadata.

Outputs (``results/``): ``table1..4.md``, ``fig6a.md``, ``fig6b.md`` and their ``.csv``
(long format: one row per cell, with paper, ours, difference), ``fig5_visual.png``,
``fig6a_symmetric.png``, ``fig6b_nf.png``, ``psnr_vs_ratio.png``, and ``all_runs.csv``
(every per-image row).
"""

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import published as paper
from ..errors import unknown_name
from ..export import atomic_write_text, write_csv
from .labels import CLASSICAL, EXTRA, LABELS, LEARNED_LABELS  # noqa: F401 - LABELS re-exported
from .labels import label as _label
from .zoo import find

#: the authors' released models: table row -> (method, the paper's row for its numbers)
RELEASE_ROWS = {"ISTA-Net (authors' release)": ("ista-net", "ISTA-Net"),
                "ISTA-Net+ (authors' release)": ("ista-net-plus", "ISTA-Net+")}


@dataclass
class Cell:
    table: str
    row: str
    column: str
    method: str
    ratio: float
    paper: float = float("nan")
    params: dict = field(default_factory=dict)
    phi: str = ""  # a release Phi (its path in the release) instead of the harness's
    scope: str = "block"  # the paper's protocol: every block reconstructed on its own

    @property
    def key(self):
        return (self.method, json.dumps(self.params, sort_keys=True), self.phi, self.scope)


def _learned(table, row, column, method, ratio, paper_value, tier=1, run_ratio=None, **kw):
    e = find(method, ratio, tier=tier, **kw)
    if e is None:
        raise KeyError(f"no zoo entry for {method} {ratio} tier {tier} {kw}")
    params = {"weights": e.name}
    return Cell(table, row, column, method, run_ratio or ratio, paper_value, params)


def cells():
    """Every cell of Tables 1-4 and the figures' data."""
    out = []
    for label, vals in paper.TABLE1.items():
        m = "ista-net" if label == "ISTA-Net" else "fista-net"
        for np_, v in vals.items():
            out.append(_learned("table1", label, f"Np={np_}", m, 0.25, v, tier=2, phases=np_))
    for label, vals in paper.TABLE2.items():
        for r in (0.25, 0.10):
            if label in CLASSICAL:
                out.append(Cell("table2", label, f"{r:g}", CLASSICAL[label], r, vals[r]))
            else:
                m = {v: k for k, v in LEARNED_LABELS.items()}[label]
                out.append(_learned("table2", label, f"{r:g}", m, r, vals[r]))
    for label, m in EXTRA.items():
        for r in (0.25, 0.10):
            out.append(Cell("table2", label, f"{r:g}", m, r))
    for np_, vals in paper.TABLE3.items():
        for label, v in vals.items():
            m = {v: k for k, v in LEARNED_LABELS.items()}[label]
            out.append(_learned("table3", f"Np={np_}", label, m, 0.25, v, tier=2, phases=np_))
    for label, vals in paper.TABLE4.items():
        for r, v in vals.items():
            if label in CLASSICAL:
                out.append(Cell("table4", label, f"{r:g}", CLASSICAL[label], r, v))
            elif label == "ISTA-Net0.4":
                out.append(_learned("table4", label, f"{r:g}", "ista-net", 0.4, v, run_ratio=r))
            else:
                m = {v: k for k, v in LEARNED_LABELS.items()}[label]
                out.append(_learned("table4", label, f"{r:g}", m, r, v))
    out += release_cells()
    out += ratio_matrix_cells()
    for m in ("ista-net", "fista-net", "ista-net-star", "fista-net-star"):  # Fig. 6a
        for g in (0.01, 0.0):
            out.append(_learned("fig6a", LEARNED_LABELS[m], f"gamma={g:g}", m, 0.25, float("nan"),
                                tier=2, phases=11, gamma=g))
    for nf in (8, 16, 32, 48, 64):  # Fig. 6b
        out.append(_learned("fig6b", "ISTA-Net", f"Nf={nf}", "ista-net", 0.25, float("nan"),
                            tier=2, phases=9, gamma=0.01, nf=nf))
    return out


def _release_cell(table, row, method, ratio, paper_value, trained_ratio=None):
    """A cell of an authors' released model: its own Phi and Qinit where the release has
    them, else the harness Phi with Qinit solved on T91 (``_phi-ours``); ``trained_ratio``
    runs the model of that ratio at ``ratio`` (harness Phi_b, Qinit_b)."""
    from ..learned import release as rel

    r = trained_ratio or ratio
    own = trained_ratio is None and rel.has_own_phi(r)
    params = {"weights": rel.weights_name(method, r, own_phi=own)}
    if trained_ratio is not None:
        params["trained_ratio"] = trained_ratio
    return Cell(table, row, f"{ratio:g}", method, ratio, paper_value, params,
                phi=rel.phi_path(r) if own else "")


def release_cells():
    """Table 2 and Table 4 rows of the authors' released models, at every ratio they cover."""
    from ..learned import release as rel

    out = []
    for row, (m, paper_row) in RELEASE_ROWS.items():
        for r in (0.25, 0.10):
            out.append(_release_cell("table2", row, m, r, paper.CVPR2018[paper_row][r]))
        for r in paper.TABLE4["ISTA-Net"]:
            if any(abs(r - x) < 1e-9 for x in rel.RATIOS):
                out.append(_release_cell("table4", row, m, r, paper.CVPR2018[paper_row][r]))
    for r, v in paper.TABLE4["ISTA-Net0.4"].items():
        out.append(_release_cell("table4", "ISTA-Net0.4 (authors' release)", "ista-net", r, v,
                                 trained_ratio=0.4))
    for row, (m, paper_row) in RELEASE_ROWS.items():  # results/release.md: every model, both Phi
        for r in rel.RATIOS:
            v = paper.CVPR2018[paper_row][r]
            if rel.has_own_phi(r):
                out.append(_release_cell("release", row, m, r, v))
            c = _release_cell("release", row, m, r, v, trained_ratio=r)
            c.params.pop("trained_ratio")
            out.append(c)
    return out


def ratio_matrix_cells():
    """ISTA-Net trained at ratio a, run at ratio b (Phi_b, Qinit_b solved on T91), for every
    Tier 1 a and b; the authors' released ISTA-Net (harness Phi) at the ratios it covers."""
    from ..learned import release as rel
    from .zoo import TIER1_RATIOS

    out = []
    for a in TIER1_RATIOS:
        e = find("ista-net", a)
        for b in TIER1_RATIOS:
            out.append(Cell("ratio_matrix", f"ours, trained at {a:g}", f"{b:g}", "ista-net", b,
                            params={"weights": e.name}))
    for a in (r for r in rel.RATIOS if min(TIER1_RATIOS) <= r <= max(TIER1_RATIOS)):
        for b in TIER1_RATIOS:
            out.append(Cell("ratio_matrix", f"authors' release, trained at {a:g}", f"{b:g}",
                            "ista-net", b,
                            params={"weights": rel.weights_name("ista-net", a, own_phi=False)}))
    return out


def ratio_matrix_markdown(df):
    """The matrix of PSNR (trained a -> run at b) and each cell's difference to the model of
    its family trained at b (the diagonal)."""
    df = df.assign(a=[float(r.rsplit(" ", 1)[1]) for r in df.row],
                   family=[r.split(",")[0] for r in df.row], b=df.ratio)
    diag = {(f, b): p for f, a, b, p in zip(df.family, df.a, df.b, df.psnr) if abs(a - b) < 1e-9}
    text = []
    for r in df.itertuples():
        if r.note:
            text.append(str(r.note))
            continue
        ref = diag.get((r.family, r.b), np.nan)
        rel = "" if abs(r.a - r.b) < 1e-9 or np.isnan(ref) else f" ({r.psnr - ref:+.2f})"
        text.append("—" if np.isnan(r.psnr) else f"{r.psnr:.2f}{rel}")
    piv = df.assign(text=text).pivot_table(index="row", columns="column", values="text",
                                           aggfunc="first", sort=False)
    return ("# Ratio generalization: ISTA-Net trained at ratio a, run at ratio b (Set11)\n\n"
            "Rows: the model (its training ratio a); columns: the ratio b it runs at, with the "
            "harness's nested Phi_b and Qinit_b solved on T91 (Eq. 12), the weights unchanged. "
            "Cells: mean PSNR (dB), and in brackets the difference to the same family's model "
            "trained at b (the diagonal). The paper's ISTA-Net0.4 (Table 4) is the row trained "
            "at 0.4. Ours are this project's CPU-trained models (budgets in Table 4); the "
            "authors' release rows are their 200-epoch models, run with the harness Phi.\n\n"
            + piv.reset_index().rename(columns={"row": ""}).fillna("—").to_markdown(index=False)
            + "\n")


def ratio_matrix_figure(df, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    piv = df.pivot_table(index="row", columns="column", values="psnr", sort=False)
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(piv) + 1.5))
    im = ax.imshow(piv.values, cmap="viridis", aspect="auto")
    ax.set_xticks(range(piv.shape[1]), piv.columns)
    ax.set_yticks(range(piv.shape[0]), piv.index, fontsize=7)
    for i in range(piv.shape[0]):
        for j in range(piv.shape[1]):
            v = piv.values[i, j]
            if not np.isnan(v):
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=6, color="w")
    ax.set_xlabel("run at ratio b")
    fig.colorbar(im, ax=ax, label="Set11 PSNR (dB)")
    ax.set_title("ISTA-Net trained at a (rows), run at b (columns)", fontsize=9)
    fig.tight_layout()
    fig.savefig(Path(out) / "ratio_matrix.png", dpi=110)
    plt.close(fig)


def _weights_budget(name):
    """(epochs, device, wall hours, val PSNR) of a zoo model from its weights' metadata."""
    try:
        from ..learned.weights import read_metadata
    except ImportError:
        return None
    try:
        meta = read_metadata(name)
    except Exception:
        return None
    init = meta.get("init_from") or ""
    continued = isinstance(init, dict) and init.get("name") == meta.get("name")
    if isinstance(init, dict):
        init = _warm_start_text(init)
    if str(meta.get("source", "")).startswith("authors' release"):
        return {"epochs": meta.get("epochs_done"), "device": "the authors' GPU training",
                "hours": None, "val_psnr": None, "init_from": "",
                "source": meta.get("source")}
    dev = str(meta.get("device") or "")
    if dev.startswith("cuda"):
        device = f"GPU {meta.get('device_name') or ''}".strip()
    elif dev == "cpu":
        n = meta.get("threads")
        device = f"CPU, {n} thread{'s' if n != 1 else ''}" if n else "CPU"
    else:
        device = meta.get("device_name") or dev or None
    epochs, hours = _passes(meta), (meta.get("wall_seconds") or 0) / 3600
    start = "identity start" if meta.get("init") == "identity" else None
    if continued:  # a continuation: its own run, then what the versions before it cost
        logged = not meta.get("earlier") and _earlier_from_log(meta)
        earlier, total, total_h = meta.get("earlier") or logged, epochs, hours
        while earlier:
            total = (total or 0) + (_passes(earlier) or 0)
            total_h += (earlier.get("wall_seconds") or 0) / 3600
            first, earlier = earlier, earlier.get("earlier")
        if logged:
            init = (f"continuing its own earlier version ({total:.2f} ep, {total_h:.1f} h "
                    "in all; the earlier version's from its run's log)")
        elif meta.get("earlier"):
            start = "identity start" if first.get("init") == "identity" else None
            init = (f"continuing its own earlier version ({total:.2f} ep, {total_h:.1f} h "
                    "in all)")
        else:
            init = "continuing its own earlier version (whose budget it does not record)"
    return {"epochs": epochs, "device": device, "hours": hours,
            "val_psnr": meta.get("val_psnr"), "init_from": init, "start": start}


def _earlier_from_log(meta):
    """The budget of the version a continuation continues, for weights installed before
    their metadata recorded it (``earlier``): the best epoch of that version's run, from its
    committed log (``zoo_runs/<name>/log.csv``: training steps, wall seconds per epoch), or
    None where the log is not here."""
    from .zoo import RUNS

    log = Path(RUNS) / str(meta.get("name")) / "log.csv"
    whole, batch = meta.get("training_blocks"), meta.get("batch") or 64
    if not whole or not log.is_file():
        return None
    h = pd.read_csv(log)
    if not {"steps", "seconds", "val_psnr"} <= set(h.columns):
        return None
    h = h[h.epoch >= 1]
    if h.empty:
        return None
    best = h.loc[h.val_psnr.idxmax()]
    return {"epochs_done": int(best.steps) * batch / whole, "training_blocks": whole,
            "wall_seconds": float(h[h.epoch <= best.epoch].seconds.sum())}


def _passes(meta):
    """A model's training epochs in passes over its training set (short epochs counted as
    the fraction of the set they draw)."""
    epochs = meta.get("epochs_done")
    blocks, whole = meta.get("epoch_blocks"), meta.get("training_blocks")
    if epochs and blocks and whole and blocks < whole:
        epochs = epochs * blocks / whole
    return epochs


def _warm_start_text(record):
    """The warm start of a model: its source's name, marked when the weights under that name
    have changed since (the zoo installs better models under the same names)."""
    name = record.get("name", "")
    try:
        from ..learned.weights import find

        now = find(name).sha256
    except Exception:
        return name
    old = record.get("sha256")
    return f"{name} (an earlier version)" if old and now and old != now else name


#: what makes two result rows the same result: these columns equal, and the numeric ones
#: equal to 1e-6
SAME_RESULT = ["method", "params", "scope", "dataset", "image", "phi", "weights_id", "code"]
SAME_RESULT_NUMERIC = ["noise_sigma", "ratio"]


def reuse_rows(runs, previous):
    """Fill the rows of ``runs`` missing from the run cache (error NOT_CACHED) with the rows
    of ``previous`` (an earlier ``all_runs.csv``) that are the same result: same method,
    params, scope, image, ratio, noise, Phi, weights and **code** (the hash of the method's
    source, :func:`cs_bench.runner.code_id`). A row without a match stays NOT_CACHED; a row
    of an older CSV without the ``code`` column never matches. Taken rows get ``reused=True``
    (the tables say so; the column is not written to ``all_runs.csv``)."""
    from ..runner import NOT_CACHED

    if runs.empty or previous is None or previous.empty or "code" not in previous:
        return runs
    prev = previous[previous.error.isna() & previous.code.notna()].copy()

    def key(df):
        parts = [df[c].astype(object).where(df[c].notna(), "").map(str) for c in SAME_RESULT]
        parts += [df[c].astype(float).round(6).map(repr) for c in SAME_RESULT_NUMERIC]
        return pd.concat(parts, axis=1).agg("|".join, axis=1)

    todo = runs.error == NOT_CACHED
    if prev.empty or not todo.any():  # (key() of no rows is no Series)
        return runs
    prev.index = key(prev)
    prev = prev[~prev.index.duplicated(keep="last")]
    hit = pd.Series(False, index=runs.index)
    hit[todo] = key(runs[todo]).isin(prev.index).to_numpy()
    if not hit.any():
        return runs
    taken = prev.loc[key(runs[hit])].reset_index(drop=True)
    taken = taken[[c for c in runs.columns if c in taken.columns]].assign(reused=True)
    return pd.concat([runs[~hit], taken], ignore_index=True)


def runnable_groups(cells):
    """The cells grouped by key: (method, params, phi, scope, sorted ratios) in a fixed order,
    without the groups whose model is not trained or not fetched (their cells say so)."""
    groups = {}
    for c in cells:
        groups.setdefault(c.key, set()).add(c.ratio)
    out = []
    for (method, params_json, phi, scope), ratios in sorted(groups.items()):
        params = json.loads(params_json)
        if "weights" in params and _weights_budget(params["weights"]) is None:
            continue
        out.append((method, params, phi, scope, sorted(ratios)))
    return out


def compute(all_cells, dataset="set11", data_dir=None, jobs=1, progress=True, cached_only=(),
            reuse=(), previous=None):
    """Run every distinct (method, params) over the ratios it needs; per-image rows.
    Methods in ``cached_only`` are not computed: only their cached results are used.
    Methods in ``reuse`` take what the run cache lacks from ``previous`` (see
    :func:`reuse_rows`) and compute only the rest."""
    from ..runner import run

    groups = runnable_groups(all_cells)
    frames = []
    for i, (method, params, phi, scope, ratios) in enumerate(groups):
        if phi:  # a released model measured with the release's own Phi
            frames.append(_run_release_phi(method, params, phi, sorted(ratios), dataset,
                                           data_dir, jobs))
            continue
        if progress:
            print(f"[{i + 1}/{len(groups)}] {method} {params or ''} ratios "
                  f"{','.join(f'{r:g}' for r in sorted(ratios))}", flush=True)
        kw = dict(jobs=jobs, data_dir=data_dir, params={method: params}, progress=False,
                  scope=scope)
        if method in reuse:
            df = reuse_rows(run([method], dataset, sorted(ratios), cached_only=True, **kw),
                            previous)
            frames.append(_compute_missing(df, method, dataset, kw))
            continue
        frames.append(run([method], dataset, sorted(ratios), cached_only=method in cached_only,
                          **kw))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _run_release_phi(method, params, phi, ratios, dataset, data_dir, jobs):
    """Rows of a released model with the release's own Phi; ``ratio`` says the paper's ratio
    (the runner records M / 1089 for a user's Phi)."""
    from ..learned import release as rel
    from ..runner import run

    (ratio,) = ratios  # one Phi file, one ratio
    df = run([method], dataset, [ratio], jobs=jobs, data_dir=data_dir, params={method: params},
             progress=False, phi_path=str(rel.get(phi)))
    return df.assign(ratio=ratio)


def _compute_missing(df, method, dataset, kw):
    """Compute the rows of ``df`` still NOT_CACHED (per ratio, only their images)."""
    from ..runner import NOT_CACHED, run

    todo = df[df.error == NOT_CACHED]
    if todo.empty:
        return df
    done = [df[df.error != NOT_CACHED]]
    for r, g in todo.groupby("ratio"):
        done.append(run([method], dataset, [r], images=sorted(g.image), **kw))
    return pd.concat(done, ignore_index=True)


#: the columns of :func:`assemble`'s table, present when it has no rows (``--only phases``)
CELL_COLUMNS = ("table", "row", "column", "method", "params", "ratio", "phi", "paper_psnr",
                "psnr", "diff", "ssim", "seconds", "epochs", "train_device", "train_hours",
                "init_from", "start", "note")


def assemble(all_cells, runs):
    """One row per cell: paper, ours, difference, seconds, budget."""
    from ..runner import NOT_CACHED

    rows = []
    for c in all_cells:
        ours = ssim = secs = np.nan
        note = ""
        if not runs.empty:
            sel = runs[(runs.method == c.method) & np.isclose(runs.ratio, c.ratio)
                       & (runs.params.map(lambda p: _same(p, c.params)))]
            if "scope" in sel:
                sel = sel[sel.scope == c.scope]
            if "phi" in sel and c.phi:
                sel = sel[~sel.phi.astype(str).str.startswith("seed:")]
            elif "phi" in sel:
                sel = sel[sel.phi.astype(str).str.startswith("seed:") | sel.phi.isna()]
            ok = sel[sel.error.isna()]
            if len(ok):
                ours, ssim = ok.psnr.mean(), ok.ssim.mean()
                secs = ok[ok.image.isin(_256)].seconds.median() if ok.image.isin(_256).any() \
                    else ok.seconds.median()
            missing = sel.error == NOT_CACHED
            if missing.any():  # --cached-only: no mean over part of the images
                ours = ssim = secs = np.nan
                note = "not run" if missing.all() else f"{int(missing.sum())} images not run"
            elif len(sel) > len(ok):
                note = f"{len(sel) - len(ok)} failed: {sel[sel.error.notna()].error.iloc[0]}"
        budget = _weights_budget(c.params["weights"]) if "weights" in c.params else None
        if "weights" in c.params and budget is None:
            note = ("not fetched" if str(c.params["weights"]).startswith("release-")
                    else "not trained")
        rows.append({
            "table": c.table, "row": c.row, "column": c.column, "method": c.method,
            "params": json.dumps(c.params, sort_keys=True), "ratio": c.ratio,
            "phi": "release" if c.phi else "harness",
            "paper_psnr": c.paper, "psnr": ours, "diff": ours - c.paper, "ssim": ssim,
            "seconds": secs,
            "epochs": budget["epochs"] if budget else None,
            "train_device": budget["device"] if budget else None,
            "train_hours": budget["hours"] if budget else None,
            "init_from": budget["init_from"] if budget else None,
            "start": budget.get("start") if budget else None,
            "note": note,
        })
    return pd.DataFrame(rows, columns=CELL_COLUMNS)


_256 = {"Monarch", "Parrots", "barbara", "boats", "cameraman", "foreman", "house", "lena256",
        "peppers256"}


def _same(params_json, params):
    p = json.loads(params_json)
    return all(p.get(k) == v for k, v in params.items())


def _fmt(v, digits=2):
    return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def _cell_text(r):
    if r.note in ("not trained", "not fetched") or str(r.note).endswith("not run"):
        if np.isnan(r.paper_psnr):  # a figure's cell: the paper gives no number
            return str(r.note)
        return f"{r.note} (paper {_fmt(r.paper_psnr)})"
    if np.isnan(r.psnr):
        return f"— (paper {_fmt(r.paper_psnr)})"
    if np.isnan(r.paper_psnr):
        return f"{r.psnr:.2f}"
    return f"{r.psnr:.2f} ({r.paper_psnr:.2f}, {r['diff']:+.2f})"


def table_markdown(df, title, note):
    piv = df.assign(text=df.apply(_cell_text, axis=1)).pivot_table(
        index="row", columns="column", values="text", aggfunc="first", sort=False)
    piv = piv.reset_index().rename(columns={"row": ""}).fillna("—")  # a row without that column
    budget = {row: _budget_text(g) for row, g in df.groupby("row", sort=False)}
    piv["training budget"] = piv[""].map(budget)
    if piv["training budget"].eq("").all():
        piv = piv.drop(columns="training budget")
    return f"# {title}\n\n{note}\n\n" + piv.to_markdown(index=False) + "\n"


def _one_budget(e):
    if e.epochs == 0:
        return f"no training: {e.init_from} as is (Qinit solved for the ratio)"
    if e.train_hours is None or (isinstance(e.train_hours, float) and np.isnan(e.train_hours)):
        phi = " (its own Phi and Qinit)" if getattr(e, "phi", "") == "release" else ""
        return f"{e.epochs:g} ep, {e.train_device}{phi}"
    warm = ""
    if e.init_from:
        warm = f", {e.init_from}" if e.init_from.startswith("continuing") else \
            f", warm start {e.init_from}"
    if isinstance(getattr(e, "start", None), str):
        warm = f", {e.start}" + warm
    ep = f"{e.epochs:g}" if float(e.epochs).is_integer() else f"{e.epochs:.2f}"
    return f"{ep} ep, {e.train_device}, {e.train_hours:.1f} h{warm}"


def _budget_text(g):
    """The training budget of a table row; a row whose columns come from models with
    different budgets lists each with its columns ("0.25: 3 ep, ...; 0.1: 1 ep, ...")."""
    g = g.dropna(subset=["epochs"])
    if g.empty:
        return ""
    texts = {}
    for _, e in g.drop_duplicates("column").iterrows():
        texts.setdefault(_one_budget(e), []).append(str(e.column))
    if len(texts) == 1:
        return next(iter(texts))
    return "; ".join(f"{', '.join(cols)}: {t}" for t, cols in texts.items())


def table2_markdown(df, env, reused=()):
    rows = []
    for label in list(paper.TABLE2) + list(RELEASE_ROWS) + list(EXTRA):
        g = df[df.row == label]
        if g.empty:
            continue
        p = paper.TABLE2.get(label, {})
        r25, r10 = g[g.column == "0.25"].iloc[0], g[g.column == "0.1"].iloc[0]
        rows.append({"method": label, "0.25 ours": _cell_text(r25), "0.10 ours": _cell_text(r10),
                     "s/image (ours, " + env + ")": _fmt(g.seconds.mean(), 3),
                     "s/image (paper)": (f"{p['seconds']} ({p['device']})" if p else "—"),
                     "training budget": _budget_text(g)})
    return ("# Table 2: Set11 mean PSNR (dB) at ratios 0.25 and 0.10, and seconds per image\n\n"
            "Every method, the classical ones included, reconstructs each 33x33 block on its own "
            "from its measurements: the paper's protocol (`results/scope.md` sets block and "
            "image scope side by side). "
            "Cells: ours (paper, difference). Our seconds are the median per 256x256 Set11 image "
            f"on {env}; the paper's times are its own hardware's, shown apart. Rows below the "
            "paper's are our references (not in the paper). The authors' release rows are their "
            "published ISTA-Net-PyTorch models (200 epochs on their GPU), run in this harness "
            "with the release's own Phi and Qinit (`cs-bench weights fetch release`); their "
            "paper column is the CVPR 2018 paper's (ISTA-Net+ is not in this table of the "
            "paper)." + _reused_text(reused) + "\n\n"
            + pd.DataFrame(rows).to_markdown(index=False) + "\n")


TITLES = {
    "table1": ("Table 1: ISTA-Net and FISTA-Net against the number of phases Np (ratio 0.25)",
               "Cells: ours (paper, difference). All models of this table share one training "
               "budget (Tier 2)."),
    "table3": ("Table 3: loss L against L* (ISTA-Net*, FISTA-Net*), ratio 0.25",
               "Cells: ours (paper, difference). One training budget for the whole table (Tier 2)."),
    "fig6a": ("Fig. 6a: with and without the symmetric constraint (Np = 11, ratio 0.25)",
              "Cells: ours, Set11 mean PSNR (dB); the paper gives this as a bar chart only. "
              "gamma = 0 drops the symmetry term of L (Eq. 14) and L* (Eq. 15). One training "
              "budget for the whole figure (Tier 2)."),
    "fig6b": ("Fig. 6b: ISTA-Net against the number of feature maps Nf (Np = 9, ratio 0.25)",
              "Cells: ours, Set11 mean PSNR (dB); the paper plots this curve only and finds no "
              "gain past Nf ~ 40. One training budget for the whole figure (Tier 2)."),
    "table4": ("Table 4: Set11 mean PSNR (dB) at ratios 0.2-0.6",
               "Every method reconstructs each 33x33 block on its own (the paper's protocol). "
               "Cells: ours (paper, difference). ISTA-Net0.4 is the ratio-0.4 ISTA-Net used at "
               "every ratio (its Phi_b and Qinit_b). The authors' release rows are their "
               "ISTA-Net-PyTorch models at the ratios the release covers (0.3 and 0.4 with the "
               "release's own Phi and Qinit; 0.5, whose Phi the release registry lacks, with the "
               "harness Phi and Qinit solved on T91), beside the CVPR 2018 paper's numbers; "
               "ISTA-Net0.4 (authors' release) is the released 40 % model run at every ratio "
               "with the harness Phi_b and Qinit_b solved on T91."),
}


def _table_remark(t, df):
    """A sentence a table needs because of how its models were trained here."""
    if t in ("table1", "table3", "fig6a", "fig6b"):
        from .zoo import TIER2_BASE, TIER2_CPU_BLOCKS

        from ..learned.train import PROFILES

        steps = TIER2_CPU_BLOCKS // PROFILES["cpu"]["batch"]
        if len(df) and df.init_from.notna().all() and (df.init_from == TIER2_BASE).all():
            return (f" Every model here starts from the Tier 1 network {TIER2_BASE} carried to "
                    "its Np and Nf (a deeper net repeats the last phase, a shallower one keeps "
                    "the first phases, a wider one adds channels that start without effect, a "
                    "narrower one keeps the first channels; FISTA-Net starts at mu = 0), then "
                    f"fine-tunes on {TIER2_CPU_BLOCKS:,} T91 blocks ({steps} steps) with its own "
                    "loss: the comparison is between equal fine-tunes of one trained network, "
                    "which favours that network's own Np = 9 and Nf = 32, not between networks "
                    "trained from scratch for 300 epochs as in the paper."
                    + _fista_gap_text(df) + _narrow_start_text(df))
        return ""
    if t != "table4":
        return ""
    return _ista_ratio_remark(df[df.row == "ISTA-Net"])


def _fista_gap_text(df):
    """How far the FISTA-Net rows are from the ISTA-Net rows of the same column."""
    pairs = [("FISTA-Net", "ISTA-Net"), ("FISTA-Net*", "ISTA-Net*")]
    gaps = []
    for f, i in pairs:
        a = df[df.row == f].set_index("column").psnr
        b = df[df.row == i].set_index("column").psnr
        d = (a - b).dropna()
        gaps += list(d.abs())
    if not gaps:
        return ""
    return (f" FISTA-Net differs from ISTA-Net by at most {max(gaps):.2f} dB here: mu starts "
            "at 0 and the short fine-tune barely moves it, so momentum is not what these rows "
            "test.")


def _narrow_start_text(df):
    """The step-0 validation of the narrowest carried networks (from their training logs)."""
    from .zoo import RUNS

    rows = []
    for nf in sorted(int(c.split("=")[1]) for c in df.column if str(c).startswith("Nf=")):
        if nf >= 32:
            continue
        log = Path(RUNS) / f"ista-net_r0.25_np9_nf{nf}_t2" / "log.csv"
        if log.is_file():
            h = pd.read_csv(log)
            start = h[h.epoch == 0].val_psnr
            if len(start):
                rows.append(f"Nf {nf}: {float(start.iloc[0]):.1f} dB")
    if not rows:
        return ""
    return (" A narrower Nf starts from a truncated network (T91 validation at step 0: "
            + ", ".join(rows) + ") that the short fine-tune does not recover.")


def _ista_ratio_remark(ista):
    """How the ISTA-Net of each Table 4 ratio was made, when every one starts from another
    trained network (the cpu zoo: the 0.25 model, or the 0.4 model grown from it, with Qinit
    solved for the ratio)."""
    ista = ista.dropna(subset=["epochs"])
    if ista.empty or ista.init_from.isna().any():
        return ""
    as_is = ista[ista.epochs == 0].column.tolist()
    tuned = ista[ista.epochs > 0].column.tolist()
    bases = list(dict.fromkeys(ista.init_from))
    if len(bases) == 1 and not tuned:
        return (f" Here ISTA-Net at every ratio of this table is one network ({bases[0]} with "
                "Qinit solved for the ratio, no fine-tune), so the ISTA-Net and ISTA-Net0.4 "
                "rows are the same model and coincide.")
    if len(bases) == 1:
        start = f"starts from {bases[0]}"
    else:
        start = "starts from " + ", ".join(
            f"{b} ({', '.join(ista[ista.init_from == b].column)})" for b in bases)
    text = (f" ISTA-Net at every ratio here {start} with Qinit solved for the ratio (the paper "
            "trains each ratio from scratch): ")
    parts = []
    if as_is:
        parts.append(f"{', '.join(as_is)} as is")
    if tuned:
        parts.append(f"{', '.join(tuned)} fine-tuned at the ratio (see the budget)")
    return text + "; ".join(parts) + ". The ISTA-Net0.4 row is the 0.4 model."


def _timed_on(cpu_lists):
    """The CPUs named by every reused method's rows (one list each), or "" where a method's
    rows record none."""
    cpu_lists = list(cpu_lists)
    if not cpu_lists or not all(cpu_lists):
        return ""
    return ", ".join(sorted({c for v in cpu_lists for c in v}))


def _reused_text(reused):
    """What Table 2 says of the methods whose rows ``--reuse`` took from an earlier run:
    ``reused`` maps each to the CPUs its rows record (a list of methods: none recorded)."""
    if not len(reused):
        return ""
    cpus = dict(reused) if isinstance(reused, dict) else {m: [] for m in reused}
    names = ", ".join(_label(m) for m in cpus)
    known = _timed_on(cpus.values())
    where = (f"; their rows were timed on {known}" if known else "; the rows do not record the "
             "CPU they ran on, so their seconds compare with the others' only roughly")
    return (f" {names}: per-image rows (PSNR and seconds) taken from an earlier "
            "results/all_runs.csv computed by the same code (`--reuse`; `make tables-full` "
            f"recomputes them){where}.")


#: the paper's name of every method the tables run


def write_tables(cells_df, runs, out, reused=()):
    from ..runner import environment

    env = environment()
    env_text = f"{env['processor']} CPU, {env['cpus']} cores"
    for t in ("table1", "table2", "table3", "table4", "fig6a", "fig6b", "release",
              "ratio_matrix"):
        df = cells_df[cells_df.table == t]
        if df.empty:
            continue
        if t == "release":
            write_release(df, runs, out)
            continue
        if t == "ratio_matrix":
            write_csv(df, out / f"{t}.csv")
            atomic_write_text(out / f"{t}.md", ratio_matrix_markdown(df))
            ratio_matrix_figure(df, out)
            continue
        write_csv(df, out / f"{t}.csv")
        if t in ("table2", "table4"):
            atomic_write_text(out / f"{t}_ssim.md", ssim_markdown(df, t))
        if t == "table2":
            text = table2_markdown(df, env_text, reused)
        else:
            title, note = TITLES[t]
            text = table_markdown(df, title, note + _table_remark(t, df))
        if t in ("table2", "table4"):
            text += difference_notes(df)
        atomic_write_text(out / f"{t}.md", text)
    if not runs.empty:
        write_csv(runs, out / "all_runs.csv")


def difference_notes(df, limit=1.0):
    """One line per classical row with a cell more than ``limit`` dB from the paper: the
    cells, and why (:data:`cs_bench.paper.published.DIFFERENCE_NOTES`); "" when none is.

    >>> df = pd.DataFrame({"row": ["TVAL3", "TVAL3", "ISTA-Net"], "column": ["0.2", "0.3", "0.2"],
    ...                    "diff": [0.5, 1.6, -3.0]})
    >>> print(difference_notes(df).strip())
    Differences over 1 dB from the paper:
    - TVAL3 (0.3: +1.60): ...
    """
    lines = []
    for row, text in paper.DIFFERENCE_NOTES.items():
        g = df[(df.row == row) & (df["diff"].abs() > limit)]
        if not g.empty:
            cells = ", ".join(f"{c}: {d:+.2f}" for c, d in zip(g.column, g["diff"]))
            lines.append("- " + text.format(cells=cells))
    if not lines:
        return ""
    return "\nDifferences over 1 dB from the paper:\n" + "\n".join(lines) + "\n"


def ssim_markdown(df, t):
    """The SSIM companion of Table 2 or 4 (the paper reports PSNR only): mean SSIM per cell,
    same rows and columns, scikit-image's SSIM on the 0-255 luminance."""
    txt = df.assign(text=[str(n) if n else ("—" if np.isnan(v) else f"{v:.4f}")
                          for v, n in zip(df.ssim, df.note.fillna(""))])
    piv = txt.pivot_table(index="row", columns="column", values="text", aggfunc="first",
                          sort=False).reset_index().rename(columns={"row": ""}).fillna("—")
    title = {"table2": "Table 2 (SSIM): Set11 mean SSIM at ratios 0.25 and 0.10",
             "table4": "Table 4 (SSIM): Set11 mean SSIM at ratios 0.2-0.6"}[t]
    return (f"# {title}\n\nThe SSIM companion of `{t}.md`: the same models and runs, mean "
            "SSIM over Set11 (scikit-image, `data_range=255`, on the luminance). The paper "
            "reports PSNR only, so there is no paper column.\n\n"
            + piv.to_markdown(index=False) + "\n")


#: the authors' own test script (TEST_CS_ISTA_Net[_plus].py) run here on their release,
#: written by scripts/authors_release_check.py; shown beside ours when present
AUTHORS_SCRIPT = "release_authors_script.csv"


def write_release(df, runs, out):
    """results/release.md and release.csv: every released model in this harness with its own
    Phi and with ours, beside the CVPR 2018 paper and the authors' test script."""
    from ..learned import release as rel

    authors = {}
    if (out / AUTHORS_SCRIPT).is_file():
        a = pd.read_csv(out / AUTHORS_SCRIPT)
        a = a[a.image == "mean"]
        authors = {(r.method, round(r.ratio, 2)): r.psnr for r in a.itertuples()}
    rows = []
    for (row, column), g in df.groupby(["row", "column"], sort=False):
        own, ours = g[g.phi == "release"], g[g.phi == "harness"]
        r = float(column)
        method = g.method.iloc[0]
        a = authors.get((method, round(r, 2)), np.nan)
        o = own.psnr.iloc[0] if len(own) else np.nan
        rows.append({
            "model": row.replace(" (authors' release)", ""), "ratio": column,
            "CVPR 2018 paper": _fmt(g.paper_psnr.iloc[0]),
            "authors' script, here": _fmt(a),
            "ours, release Phi": (_fmt(o) + (f" / {own.ssim.iloc[0]:.4f}" if len(own) else "")
                                  if len(own) else "not in the registry"),
            "ours - authors' script": "—" if np.isnan(a) or np.isnan(o) else f"{o - a:+.2f}",
            "ours - paper": "—" if np.isnan(o) else f"{o - g.paper_psnr.iloc[0]:+.2f}",
            "ours, harness Phi + T91 Qinit": (f"{_fmt(ours.psnr.iloc[0])} / "
                                              f"{ours.ssim.iloc[0]:.4f}" if len(ours) and not
                                              np.isnan(ours.psnr.iloc[0]) else
                                              (ours.note.iloc[0] if len(ours) else "—")),
        })
    names = {rel.weights_name(m, r, own) for m in rel.ARCHS for r in rel.RATIOS
             for own in (True, False)}
    per_image = runs[runs.params.map(lambda p: json.loads(p).get("weights") in names)] \
        if not runs.empty else runs
    write_csv(per_image, out / "release.csv")
    text = ("# The authors' released ISTA-Net and ISTA-Net+ in this harness (Set11)\n\n"
            "Mean PSNR (dB) / SSIM on Set11 of the ISTA-Net-PyTorch release (9 phases, 200 "
            "epochs at lr 1e-4 on the authors' GPU; `cs-bench weights fetch release`). "
            "*Release Phi*: the release's own Phi and Qinit, the authors' exact measurement (the "
            "release has no Phi for 50 % in cs-bench's registry). *Harness Phi*: this project's "
            "nested Gaussian Phi (seed 0) with Qinit solved on the T91 training blocks (Eq. 12): "
            "whether the learned transforms carry over to another random Phi of the same size. "
            "*CVPR 2018 paper*: the paper's Set11 table. *Authors' script, here*: their "
            "TEST_CS_ISTA_Net[_plus].py run on this machine on the same files "
            "(`scripts/authors_release_check.py`). Per-image rows: `release.csv`.\n\n"
            + pd.DataFrame(rows).to_markdown(index=False) + "\n")
    atomic_write_text(out / "release.md", text)


README_START, README_END = "<!-- table2:start -->", "<!-- table2:end -->"


def update_readme(table2_md, readme="README.md"):
    r"""Put Table 2 between the README's ``<!-- table2:start/end -->`` markers (if it has them).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "README.md"
    >>> _ = p.write_text("intro\n<!-- table2:start -->\nold\n<!-- table2:end -->\nrest\n")
    >>> update_readme("# Table 2: x\n\n| a |\n", p)
    True
    >>> print(p.read_text())
    intro
    <!-- table2:start -->
    | a |
    <!-- table2:end -->
    rest
    <BLANKLINE>
    """
    path = Path(readme)
    if not path.is_file():
        return False
    text = path.read_text()
    if README_START not in text or README_END not in text:
        return False
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    body = "\n".join(ln for ln in table2_md.strip().splitlines() if not ln.startswith("# "))
    atomic_write_text(path, f"{head}{README_START}\n{body.strip()}\n{README_END}{tail}")
    return True


def _merge_runs(path, runs):
    """``runs`` plus the rows of an earlier ``all_runs.csv`` that ``runs`` does not redo, so
    a partial run (``--only``) keeps every other table's runs in the file and the figures."""
    if not Path(path).is_file():
        return runs
    old = pd.read_csv(path)
    if runs.empty:
        return old
    key = ["method", "params", "dataset", "image", "ratio", "noise_sigma"]
    both = pd.concat([old, runs], ignore_index=True)
    both["_r"] = both.ratio.round(6)
    both = both.drop_duplicates(subset=[k if k != "ratio" else "_r" for k in key], keep="last")
    return both.drop(columns="_r").reset_index(drop=True)


from .parts import PAPER_PARTS  # noqa: E402


def write_pareto(runs, cells_df, out, ratio=0.25, reused=()):
    """results/pareto.png and pareto.md: Table 2's methods at ``ratio``, mean PSNR against
    seconds per image (one run, one machine, except the methods in ``reused``, whose rows
    come from an earlier run), the Pareto front marked."""
    from .. import plot
    from ..runner import environment

    t2 = cells_df[(cells_df.table == "table2") & np.isclose(cells_df.ratio, ratio)]
    if runs.empty or t2.empty:
        return None
    base = runs[np.isclose(runs.ratio, ratio) & runs.error.isna()
                & runs.phi.astype(str).str.startswith("seed:")]  # one Phi for every point
    parts = []
    for c in t2.itertuples():  # a cell's params are the run's non-default ones
        params = json.loads(c.params)
        g = base[(base.method == c.method) & base.params.map(lambda p: _same(p, params))]
        if "scope" in g:
            g = g[g.scope == getattr(c, "scope", "block")]  # Table 2: the paper's block scope
        parts.append(g.assign(series=c.row))
    sel = pd.concat(parts) if parts else base.iloc[:0]
    if sel.empty:
        return None
    env = environment()
    device = f"{env['processor']} CPU, {env['cpus']} cores"
    fig = plot.psnr_vs_seconds(sel, title=f"Set11 at ratio {ratio:g}: PSNR against seconds per "
                                          f"image on {device} (ringed: Pareto front)")
    plot.save(fig, out / "pareto", formats=("png",))
    pts = plot.points(sel)
    front = set(plot.pareto_front(pts).series)
    pts = pts.sort_values("seconds")
    old = sel[sel.method.isin(list(reused))]
    earlier = sorted(set(old.series))
    known = _timed_on(sorted(set(g.cpu)) if "cpu" in g and g.cpu.notna().all() else []
                      for _, g in old.groupby("series"))
    on = f"on {known}" if known else "on a CPU the rows do not record, so compare those only roughly"
    timed = (f"timed in the same `make tables` run on {device}, except {', '.join(earlier)}, "
             f"whose rows (and seconds) come from an earlier run of the same code (`--reuse`) {on}"
             if earlier else f"all timed in the same `make tables` run on {device}")
    rows = [{"method": r.series, "PSNR (dB)": f"{r.psnr:.2f}", "s/image": f"{r.seconds:.4g}",
             "images": int(r.images), "Pareto front": "yes" if r.series in front else ""}
            for r in pts.itertuples()]
    atomic_write_text(out / "pareto.md", (
        f"# Quality against cost: Set11 at ratio {ratio:g}\n\nMean PSNR and mean seconds per "
        f"image of every Table 2 method (harness Phi), {timed}; learned methods on the CPU "
        "too. A method is on the Pareto front when no other is both faster and better. The authors' released models are measured with their "
        "own Phi in Table 2, so they are left out here (one Phi for every point).\n\n" + pd.DataFrame(rows).to_markdown(index=False) + "\n"))
    return pts


def _write_phases(out, dataset, data_dir):
    """results/phases.*: PSNR after each phase of the Table 2 unrolled models at 0.25."""
    from ..data import image_refs
    from .phases import table2_models, write_phases

    models = table2_models(0.25)
    if models:
        write_phases(models, {r.name: r.load() for r in image_refs(dataset, data_dir)}, out)


def make_tables(out="results", dataset="set11", data_dir=None, jobs=1, figures=True,
                progress=True, only=None, cached_only=(), reuse=()):
    """Run what the paper's tables need (cached) and write them; ``only``: a subset of
    PAPER_PARTS (:func:`cs_bench.paper.build.make_tables` makes every part, those beyond the
    paper too);
    ``cached_only``: method names whose missing results are shown as "not run", not computed
    (e.g. D-AMP, ~20 CPU-minutes per ratio on Set11); ``reuse``: method names whose results
    missing from the run cache are taken from ``out/all_runs.csv`` where that file holds the
    same result computed by the same code (:func:`reuse_rows`), the rest computed."""
    t0 = time.perf_counter()
    out = Path(out)
    all_cells = cells()
    if only:
        for part in only:
            if part not in PAPER_PARTS:
                raise unknown_name("table", part, PAPER_PARTS)
        all_cells = [c for c in all_cells if c.table in only]
    if cached_only or reuse:
        from ..registry import list_methods

        for m in list(cached_only) + list(reuse):
            if m not in list_methods():
                raise unknown_name("method", m, list_methods())
    previous = None
    if reuse and (out / "all_runs.csv").is_file():
        previous = pd.read_csv(out / "all_runs.csv", dtype={"params": str, "code": str})
    runs = compute(all_cells, dataset, data_dir, jobs, progress, tuple(cached_only),
                   tuple(reuse), previous)
    cells_df = assemble(all_cells, runs)
    reused = ()
    if not runs.empty:
        from ..runner import NOT_CACHED

        runs = runs[runs.error != NOT_CACHED].reset_index(drop=True)
        if "reused" in runs:
            taken = runs[runs.reused.eq(True)]
            reused = {m: sorted(set(g.cpu)) if "cpu" in g and g.cpu.notna().all() else []
                      for m, g in taken.groupby("method")}
            runs = runs.drop(columns="reused")
    if only:
        runs = _merge_runs(out / "all_runs.csv", runs)  # keep the other tables' runs
    write_tables(cells_df, runs, out, reused)
    t2 = out / "table2.md"
    if t2.is_file() and out.resolve().parent == Path.cwd().resolve():
        update_readme(t2.read_text(), Path.cwd() / "README.md")
    if figures:
        from . import figures as figs

        figs.write_all(cells_df, runs, out, dataset=dataset, data_dir=data_dir)
    if figures and (not only or "phases" in only):
        _write_phases(out, dataset, data_dir)
    if figures and (not only or "table2" in only):
        write_pareto(runs, cells_df, out, reused=reused)
    if progress:
        print(f"tables written to {out}/ in {time.perf_counter() - t0:.0f} s", flush=True)
        if not runs.empty and "seconds" in runs:
            cost = runs.groupby("method").seconds.sum().sort_values(ascending=False) / 60
            top = ", ".join(f"{m} {v:.0f}" for m, v in cost.head(4).items())
            print(f"on a cold cache these results cost {cost.sum():.0f} CPU-minutes "
                  f"(sum of per-image seconds; {top}); divide by --jobs for the wall time",
                  flush=True)
    return cells_df
