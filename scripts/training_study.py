"""The training study of issue 16: validation PSNR per CPU-hour for ISTA-Net training strategies.

Every strategy trains ISTA-Net at ratio 0.25 (Np 9, Nf 32) on the T91 blocks, one torch thread
per run (two run side by side on a 2-core machine), with the same step budget: ``EPOCHS``
short epochs of ``EPOCH_BLOCKS`` random blocks (validation on the 2,048 held-out T91 blocks
after each; Set11 is never used). Each run logs its process CPU time, so strategies are
compared at equal CPU-seconds whatever else the machine was doing.

    python scripts/training_study.py list
    nice -n 19 python scripts/training_study.py run paper        # resumable; Ctrl-C saves
    nice -n 19 python scripts/training_study.py run-all          # every unfinished one (make train)
    python scripts/training_study.py report                      # results/training_study.*

Runs live in ``zoo_runs/study-<strategy>/`` (``log.csv`` per short epoch, the checkpoint while
unfinished), so the study continues across sessions.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "zoo_runs"
OUT = ROOT / "results"

EPOCH_BLOCKS = 12800  # 200 steps of 64: validated every ~7 CPU-minutes
EPOCHS = 11  # 140,800 blocks (1.6 passes over T91), 0.6-2.3 CPU-hours at one thread
#: equal-step comparison points: half the budget and the whole (2,200 steps)
STEP_MARKS = (EPOCHS * EPOCH_BLOCKS // 64 // 2, EPOCHS * EPOCH_BLOCKS // 64)

#: strategy -> (what it is, TrainConfig fields beyond the common ones)
STRATEGIES = {
    "paper": ("the paper: Xavier init, Adam 1e-3 constant",
              {"lr": 1e-3, "schedule": "constant"}),
    "release": ("the authors' release: Xavier init, Adam 1e-4 constant",
                {"lr": 1e-4, "schedule": "constant"}),
    "identity": ("identity-start phases, Adam 1e-3 constant",
                 {"lr": 1e-3, "schedule": "constant", "init": "identity"}),
    "identity-phase-input": ("identity-start phases, Adam 1e-3 constant, symmetry term on the "
                             "phase input (the authors' code: ~1.3x the steps per CPU-second)",
                             {"lr": 1e-3, "schedule": "constant", "init": "identity",
                              "sym_input": "phase_input"}),
    "identity-ema": ("identity-start phases, Adam 1e-3 constant, validating the weights' "
                     "moving average (decay 0.999 per step)",
                     {"lr": 1e-3, "schedule": "constant", "init": "identity", "ema": 0.999}),
    "identity-theta0": ("identity-start phases with threshold 0 (step 0 gives x(0) = Qinit y), "
                        "Adam 1e-3 constant",
                        {"lr": 1e-3, "schedule": "constant", "init": "identity", "theta_init": 0.0}),
    "identity-onecycle": ("identity-start phases, one-cycle to 2e-3 (warm-up then cosine)",
                          {"lr": 2e-3, "schedule": "onecycle", "init": "identity"}),
    "identity-cosine": ("identity-start phases, cosine from 1e-3",
                        {"lr": 1e-3, "schedule": "cosine", "init": "identity"}),
    "identity-progressive": ("identity-start phases, Adam 1e-3 constant; progressive depth: Np 3 "
                             "for the first 4 short epochs, then carried to Np 9 (the last phase "
                             "repeated, learned/carry.py) for the other 7",
                             {"lr": 1e-3, "schedule": "constant", "init": "identity",
                              "grow": (3, 4)}),
    "identity-onecycle-bf16": ("identity-start phases, one-cycle to 2e-3, bfloat16 autocast "
                               "(results/bench.md times it against fp32 on this CPU)",
                               {"lr": 2e-3, "schedule": "onecycle", "init": "identity",
                                "precision": "bf16"}),
    "identity-progressive-onecycle": ("identity-start phases; progressive depth as above (Np 3 "
                                      "for 4 short epochs, then carried to Np 9 for 7), each "
                                      "stage with its own one-cycle to 2e-3",
                                      {"lr": 2e-3, "schedule": "onecycle", "init": "identity",
                                       "grow": (3, 4)}),
    "identity-onecycle-1e-3": ("identity-start phases, one-cycle to 1e-3 (the peak halved)",
                               {"lr": 1e-3, "schedule": "onecycle", "init": "identity"}),
    "identity-onecycle-4e-3": ("identity-start phases, one-cycle to 4e-3 (the peak doubled)",
                               {"lr": 4e-3, "schedule": "onecycle", "init": "identity"}),
    "xavier-onecycle": ("the paper's Xavier start, one-cycle to 2e-3 (the schedule without "
                        "the identity start)",
                        {"lr": 2e-3, "schedule": "onecycle", "init": "xavier"}),
}
#: the training-set recipe (None: the default T91 one)
RECIPE = None


def config(strategy):
    from cs_bench.learned.train import TrainConfig

    extra = {k: v for k, v in STRATEGIES[strategy][1].items() if k != "grow"}
    recipe = {"recipe": RECIPE} if RECIPE is not None else {}
    common = dict(method="ista-net", ratio=0.25, phases=9, nf=32, batch=64, precision="fp32",
                  epochs=EPOCHS, epoch_blocks=EPOCH_BLOCKS, threads=1, seed=0,
                  validate_start=True, profile="study", name=f"study-{strategy}",
                  out=str(RUNS / f"study-{strategy}"), checkpoint_every=50, **recipe)
    return TrainConfig(**{**common, **extra})


def stages(strategy):
    """The runs of a strategy, in order: its one run, or with ``grow = (Np, epochs)`` first
    that many epochs at that depth (in ``study-<strategy>/grow``), then the full network
    carried from the shallow one's best epoch for the rest of the step budget."""
    from dataclasses import replace

    cfg = config(strategy)
    grow = STRATEGIES[strategy][1].get("grow")
    if not grow:
        return [cfg]
    phases, epochs = grow
    first = replace(cfg, phases=phases, epochs=epochs, out=str(Path(cfg.out) / "grow"),
                    name=f"{cfg.name}-grow")
    return [first, replace(cfg, epochs=EPOCHS - epochs,
                           init_from=str(Path(first.out) / "best.safetensors"))]


def _log(out):
    """A run's log rows that record CPU time (the zoo's reader of log.csv)."""
    from cs_bench.paper.zoo import _run_log

    return [r for r in _run_log(out) if r.get("cpu_seconds")]


def _stage_done(cfg, rows):
    return bool(rows) and int(rows[-1]["epoch"]) >= cfg.epochs


def run(strategy):
    from cs_bench.learned.train import train

    for cfg in stages(strategy):
        if _stage_done(cfg, _log(cfg.out)):
            continue
        resume = (Path(cfg.out) / "checkpoint.safetensors").is_file()
        res = train(cfg, resume=resume, progress=False, log=lambda m: print(m, flush=True))
        print(f"{cfg.name}: {res['status']}, best val {res['best']['val_psnr']:.2f} dB",
              flush=True)
        if res["status"] != "done":
            return


def finished(strategy):
    rows = read_log(strategy)
    return bool(rows) and int(rows[-1]["epoch"]) >= EPOCHS


def run_all(only=()):
    """Train the unfinished strategies in order (``only``: just these, in this order),
    skipping any another process holds (so two of these, one per core, share the study);
    returns 0 when none is left, 130 when a run was stopped (so `make train` stops too)."""
    from cs_bench.paper.zoo import _lock, _unlock

    for s in only or STRATEGIES:
        d = RUNS / f"study-{s}"
        if finished(s):
            continue
        d.mkdir(parents=True, exist_ok=True)
        if not _lock(str(d)):
            print(f"{s}: being trained by another process; skipped", flush=True)
            continue
        try:
            run(s)
        finally:
            _unlock(str(d))
        if not finished(s):  # stopped (signal): leave the rest for the next call
            return 130
    return 0


def read_log(strategy):
    """The strategy's log rows; a staged strategy's stages joined into one run (a later
    stage's epochs, steps and CPU-seconds continue the earlier stage's)."""
    rows, done = [], {"epoch": 0, "steps": 0, "cpu_seconds": 0.0}
    for cfg in stages(strategy):
        own = _log(cfg.out)
        rows += [{**r, "epoch": str(int(r["epoch"]) + done["epoch"]),
                  "steps": str(int(r["steps"]) + done["steps"]),
                  "cpu_seconds": str(float(r["cpu_seconds"]) + done["cpu_seconds"])} for r in own]
        if not _stage_done(cfg, own):
            break
        done = {"epoch": int(rows[-1]["epoch"]), "steps": int(rows[-1]["steps"]),
                "cpu_seconds": float(rows[-1]["cpu_seconds"])}
    return rows


def _at(rows, hours):
    """Best validation PSNR reached within ``hours`` CPU-hours (None if the run is shorter)."""
    if not rows or float(rows[-1]["cpu_seconds"]) < hours * 3600:
        return None
    return max(float(r["val_psnr"]) for r in rows if float(r["cpu_seconds"]) <= hours * 3600)


def _at_step(rows, steps):
    """Best validation PSNR within the first ``steps`` training steps (None if shorter)."""
    if not rows or int(rows[-1]["steps"]) < steps:
        return None
    return max(float(r["val_psnr"]) for r in rows if int(r["steps"]) <= steps)


def _cpu_per_step(rows):
    """Median CPU-seconds per training step over the run's epochs."""
    import statistics

    d = [(float(b["cpu_seconds"]) - float(a["cpu_seconds"])) / (int(b["steps"]) - int(a["steps"]))
         for a, b in zip(rows, rows[1:]) if int(b["steps"]) > int(a["steps"])]
    return statistics.median(d) if d else None


def _status(strategy, rows):
    """done; unfinished with a checkpoint (resumes); or stopped without one (starts again)."""
    epoch = int(rows[-1]["epoch"])
    if epoch >= EPOCHS:
        return "done"
    if any((Path(c.out) / "checkpoint.safetensors").is_file() for c in stages(strategy)):
        return f"epoch {epoch} of {EPOCHS}, resumes"
    return f"stopped at epoch {epoch} of {EPOCHS} (no checkpoint: starts again)"


def _references():
    """The linear start x(0) = Qinit y and the shipped zoo model on the same validation blocks."""
    import math

    import numpy as np

    from cs_bench.learned import weights as wt
    from cs_bench.learned.qinit import qinit
    from cs_bench.learned.trainset import Recipe, load
    from cs_bench.sensing import make_phi

    try:
        data = load(Recipe())
    except Exception as exc:  # noqa: BLE001 - no T91 here: the references are left out
        return [f"(references not computed: {type(exc).__name__})", ""]
    Phi = make_phi(0.25)
    X = np.asarray(data.val, dtype=np.float64)
    x0 = np.clip(X @ Phi.T @ qinit(data.moment, Phi).T, 0, 1)
    q = 10 * math.log10(1 / float(np.mean((x0 - X) ** 2)))
    meta = wt.read_metadata("ista-net_r0.25_np9_nf32")
    blocks = meta.get("epochs_done", 0) * (meta.get("epoch_blocks") or meta["training_blocks"])
    source = f", the best epoch of `zoo_runs/{meta['promoted_from']}`" if meta.get(
        "promoted_from") else ""
    try:
        from cs_bench.learned.release import weights_name
        from cs_bench.learned.validate import validation_psnr

        rel = (f"; the authors' released ISTA-Net (200 epochs on all of T91, these blocks "
               f"included; its own Phi) gives "
               f"{validation_psnr(weights_name('ista-net', 0.25), data=data):.2f} dB")
    except Exception:  # noqa: BLE001 - the release is not fetched here
        rel = ""
    return [f"References on the same blocks: x(0) = Qinit y alone gives {q:.2f} dB; the shipped "
            f"zoo model `ista-net_r0.25_np9_nf32` ({blocks:,} training blocks, {meta.get('schedule')} "
            f"from {meta.get('lr'):g}, {meta.get('init') or 'xavier'} start{source}) validates at "
            f"{meta.get('val_psnr'):.2f} dB{rel}.", ""]


def report():
    import matplotlib

    from cs_bench.files import atomic_write, atomic_write_text

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = ["# Training study: ISTA-Net validation PSNR per CPU-hour", "",
             "ISTA-Net, ratio 0.25, Np 9, Nf 32, batch 64, fp32, one torch thread per run; "
             f"{EPOCHS} short epochs (paper and identity: 16) of {EPOCH_BLOCKS:,} random T91 "
             "blocks; PSNR on the 2,048 "
             "held-out T91 validation blocks (never Set11). CPU-hours are the process's CPU time "
             "(`time.process_time`). CPU-seconds per step differ between runs made in different "
             "sessions (the CPU and what shared it were not the same: see the CPU-s/step column), "
             "so the fair comparison is at an equal number of steps: the 'steps' columns. "
             "Made by `scripts/training_study.py report`.", "",
             f"| strategy | what | step 0 (dB) | {STEP_MARKS[0]:,} steps | {STEP_MARKS[1]:,} steps "
             "| 0.5 h | 1 h | 2 h | best (dB) | CPU-s/step | CPU-h run | status |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    fig, (ax_s, ax) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for s, (what, _) in STRATEGIES.items():
        rows = read_log(s)
        if not rows:
            lines.append(f"| {s} | {what} | | | | | | | | | 0 | not run |")
            continue
        h = [float(r["cpu_seconds"]) / 3600 for r in rows]
        v = [float(r["val_psnr"]) for r in rows]
        ax.plot(h, v, marker=".", label=s)
        ax_s.plot([int(r["steps"]) for r in rows], v, marker=".", label=s)
        step0 = next((f"{float(r['val_psnr']):.2f}" for r in rows if r["epoch"] == "0"), "")
        cells = [_at_step(rows, n) for n in STEP_MARKS] + [_at(rows, t) for t in (0.5, 1, 2)]
        per = _cpu_per_step(rows)
        lines.append(f"| {s} | {what} | {step0} | " + " | ".join(
            "" if c is None else f"{c:.2f}" for c in cells)
            + f" | {max(v):.2f} | {'' if per is None else f'{per:.2f}'} | {h[-1]:.2f} | "
            f"{_status(s, rows)} |")
    lines += ["", "Cells: best validation PSNR reached within that many training steps (batch 64) "
              "or CPU-hours (empty: the run has not reached it yet).", ""] + _references()
    ax_s.set_xlabel("training steps (batch 64)")
    ax_s.set_ylabel("T91 validation PSNR (dB)")
    ax_s.set_title("ISTA-Net 0.25 training strategies, per step")
    ax.set_xlabel("CPU-hours (one thread; the CPU differs between sessions)")
    ax.set_title("per CPU-hour")
    ax_s.set_xlim(0, STEP_MARKS[1] * 1.05)
    ax_s.set_ylim(19, None)
    for a in (ax_s, ax):
        a.grid(alpha=0.3)
    ax_s.legend(fontsize=7)
    fig.tight_layout()
    OUT.mkdir(exist_ok=True)
    atomic_write(OUT / "training_study.png", lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    atomic_write_text(OUT / "training_study.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="the strategies")
    r = sub.add_parser("run", help="train (or resume) one strategy")
    r.add_argument("strategy", choices=list(STRATEGIES))
    ra = sub.add_parser("run-all", help="train every unfinished strategy not taken by another "
                        "process")
    ra.add_argument("only", nargs="*", metavar="strategy",
                    help="just these strategies, in this order (see list)")
    sub.add_parser("report", help="write results/training_study.md and .png")
    a = ap.parse_args(argv)
    if a.cmd == "list":
        for s, (what, _) in STRATEGIES.items():
            print(f"{s:20s} {what}")
    elif a.cmd == "run":
        run(a.strategy)
    elif a.cmd == "run-all":
        bad = [s for s in a.only if s not in STRATEGIES]
        if bad:
            ap.error(f"unknown strategy '{bad[0]}'; valid: {', '.join(STRATEGIES)}")
        return run_all(a.only)
    else:
        report()


if __name__ == "__main__":
    sys.exit(main())
