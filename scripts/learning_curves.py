"""results/learning_curves.png and .md: the Tier 1 ISTA-Net / FISTA-Net training curves.

Each curve is the T91 validation PSNR (2,048 held-out blocks) of one zoo model against its
epochs, read from ``zoo_runs/<name>/log.csv`` (epoch 0: the warm start, where there is one).
The table beside it gives each installed model's Set11 PSNR as the tables measured it
(``results/table2.csv`` / ``table4.csv``; measured after the fact, never used for a choice),
the paper's value and the authors' released model in this harness; the authors' released
ISTA-Net, validated on the same T91 blocks (``learned.validate``), is each curve's reference
line.

    python scripts/learning_curves.py
"""

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS = [("ista-net", 0.25), ("fista-net", 0.25), ("ista-net", 0.1), ("fista-net", 0.1)] + [
    ("ista-net", r) for r in (0.2, 0.3, 0.4, 0.5, 0.6)] + [
    ("reconnet-enhanced", r) for r in (0.5, 0.6)]  # the Enhanced ReconNet continuations
LABELS = {"ista-net": "ISTA-Net", "fista-net": "FISTA-Net", "reconnet-enhanced": "Enhanced ReconNet"}


def _set11(tables, method, ratio):
    """(ours, paper, release) Set11 PSNR of the Tier 1 row of ``method`` at ``ratio``."""
    label = LABELS[method]
    out = [float("nan")] * 3
    for t in tables:
        hit = t[(t.row == label) & ((t.ratio - ratio).abs() < 1e-9)]
        if len(hit):
            out[0], out[1] = float(hit.psnr.iloc[0]), float(hit.paper_psnr.iloc[0])
        rel = t[(t.row == f"{label} (authors' release)") & ((t.ratio - ratio).abs() < 1e-9)]
        if len(rel):
            out[2] = float(rel.psnr.iloc[0])
    return out


def _release_val(method, ratio, data):
    """T91 validation PSNR of the authors' released model of ``method`` at ``ratio`` (nan when
    there is none, or it or T91 is not here)."""
    from cs_bench.learned.release import weights_name
    from cs_bench.learned.validate import validation_psnr

    if method != "ista-net" or data is None:
        return float("nan")
    try:
        return validation_psnr(weights_name(method, ratio), data=data)
    except Exception:  # noqa: BLE001 - not fetched (`cs-bench weights fetch release`)
        return float("nan")


def main():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tables = [pd.read_csv(p) for p in (ROOT / "results" / "table2.csv",
                                       ROOT / "results" / "table4.csv") if p.is_file()]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    rows = []
    from cs_bench.files import atomic_write, atomic_write_text
    from cs_bench.paper.zoo import CONTINUED, _regrowing, find
    from cs_bench.learned.weights import read_metadata

    try:
        from cs_bench.learned.trainset import Recipe, load

        data = load(Recipe())
    except Exception:  # noqa: BLE001 - no T91 here: no release reference lines
        data = None
    # one colour a model (its runs and its release line share it; a first run is paler), from
    # 18 distinct hues so that no two models share one
    palette = list(plt.cm.tab10.colors) + list(plt.cm.Dark2.colors)
    for i, (method, r) in enumerate(MODELS):
        color = palette[i % len(palette)]
        name = find(method, r).name
        meta = read_metadata(name)
        run = meta.get("promoted_from") or name  # the run that made the weights
        ours, paper, release = _set11(tables, method, r)
        rel_val = _release_val(method, r, data)
        # the installed model's run; when that is a continuation (zoo_runs/<name>.2, from the
        # first run's best epoch), the first run too; then a run of the model still training
        # (a checkpoint): its weights are not installed, so it has no Set11 number
        cont = name + CONTINUED
        # a run regrowing the model from an improved warm start did not make the weights
        regrow = _regrowing(find(method, r), "cpu", meta, ROOT / "zoo_runs" / name)
        ref_drawn = False
        for this in dict.fromkeys((run, name, cont)):
            log = ROOT / "zoo_runs" / this / "log.csv"
            installed = this == run and not (this == name and regrow)
            first = this == name and run == cont
            training = not (installed or first) and (
                ROOT / "zoo_runs" / this / "checkpoint.safetensors").is_file()
            if not log.is_file() or not (installed or training or first):
                continue
            h = pd.read_csv(log)
            start = 0
            if this == cont and (ROOT / "zoo_runs" / name / "log.csv").is_file():
                h0 = pd.read_csv(ROOT / "zoo_runs" / name / "log.csv")
                start = int(h0.steps[h0.val_psnr.idxmax()])  # the epoch it continues from
            passes = (h.steps + start) * 64 / 88_912  # batch 64; short and whole epochs alike
            label = (name if this == name else f"{name} (run {this})") + (
                " (first run)" if first else "" if installed else " (training, not installed)")
            ax.plot(passes, h.val_psnr, "o-" if installed or first else ".--", markersize=3,
                    label=label, color=color, alpha=0.45 if first else 1.0)
            if not ref_drawn and rel_val == rel_val:  # the release's level, once a model
                ax.axhline(rel_val, color=color, linestyle=":", linewidth=0.8)
                ref_drawn = True
            nan = float("nan")
            rows.append({"model": name, "run": this if installed or first else f"{this} (training)",
                         "passes over T91": round(float(passes.max()), 2),
                         "T91 val. best (dB)": round(float(h.val_psnr.max()), 2),
                         "T91 val. last (dB)": round(float(h.val_psnr.iloc[-1]), 2),
                         "Set11 ours": round(ours, 2) if installed else nan,
                         "Set11 paper": round(paper, 2),
                         "Set11 authors' release": round(release, 2),
                         "T91 val. authors' release": round(rel_val, 2),
                         "ended by": (meta.get("ended") or "not recorded") if installed
                         else f"continued in {cont}" if first else "still training"})
    ax.set_xlabel("passes over the 88,912 T91 training blocks")
    ax.set_ylabel("T91 validation PSNR (dB)")
    ax.set_title("Zoo training curves (dotted: the authors' released ISTA-Net at that ratio, "
                 "validated on the same blocks)", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    atomic_write(ROOT / "results" / "learning_curves.png",
                 lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    text = ("# Learning curves of the Tier 1 ISTA-Net / FISTA-Net models and the continued "
            "Enhanced ReconNets\n\n"
            "T91 validation PSNR against training blocks seen, from the log of the run that made "
            "each installed model (`zoo_runs/<run>/log.csv`; the curves in "
            "`learning_curves.png`), and each installed model's Set11 PSNR as `make tables` "
            "measured it, beside the paper and the authors' released model in this harness. "
            "Set11 is measured after the fact and never used to choose anything. Made by "
            "`scripts/learning_curves.py`. A run named `<model>.2` is a continuation: the model "
            "trains on from its first run's best epoch with a fresh one-cycle schedule "
            "(`cs_bench.paper.zoo.CONTINUE`), drawn from where it starts. A run marked *training* is a zoo run still in "
            "progress: its weights are installed only when its validation beats the shipped "
            "model's, so it has no Set11 number. *Ended by*: the epoch budget, or the stop rule "
            "(`cs_bench.paper.zoo.STOP_GAIN`: less than 0.05 dB gained over the last 3 epochs "
            "after the schedule's decay); models installed before the rule existed do not "
            "record it. *T91 val. authors' release*: their released ISTA-Net, measuring with its "
            "own Phi, on the same validation blocks (the dotted lines); they trained on all of "
            "T91, these blocks included.\n\n" + pd.DataFrame(rows).to_markdown(index=False)
            + "\n")
    atomic_write_text(ROOT / "results" / "learning_curves.md", text)
    print(text)


if __name__ == "__main__":
    main()
