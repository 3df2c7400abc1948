"""The model zoo: every trained network the paper's tables need, by name.

Tier 1 (Tables 2 and 4) gets the largest training budget; Tier 2 (Table 1, Table 3,
Fig. 6) one smaller budget that is the same for every model of a table, so comparisons
inside a table are fair. The tables and ``cs-bench train-zoo`` both read this list.

>>> e = entry("ista-net_r0.25_np9_nf32")
>>> e.method, e.ratio, e.phases, e.tier
('ista-net', 0.25, 9, 1)
>>> len([e for e in ZOO if e.tier == 1])
20
"""

from dataclasses import asdict, dataclass, replace

from ..errors import unknown_name
from ..learned import spec

TIER1_RATIOS = (0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6)


@dataclass(frozen=True)
class ZooEntry:
    method: str  # registry name
    ratio: float
    tier: int
    phases: int = 9
    nf: int = 32
    gamma: float = 0.01
    init_from: str = ""  # warm start (another zoo name), recorded in the weights' metadata

    @property
    def unfolded(self):
        return spec.ARCH_OF[self.method] in spec.UNROLLED

    @property
    def loss(self):
        return spec.spec(self.method).loss

    @property
    def name(self):
        return spec.weights_name(self.method, self.ratio, self.phases, self.nf, self.gamma,
                                 self.tier)

    def as_dict(self):
        return {**asdict(self), "name": self.name, "loss": self.loss}


def _nearest_trained_ratio(r):
    """ISTA-Net at ratio r warm-starts from the nearest of the 0.25 model (trained from
    scratch) and the 0.4 model (grown from 0.25; FINETUNES), with Qinit solved anew for r.
    The paper's ISTA-Net0.4 shows one model's F, G, rho, theta serve every ratio within
    ~0.3 dB, and the authors' released 0.4 model run at 0.2-0.6 confirms it
    (results/table4.md); a 0.25 model carried upwards loses more (1.4 dB of T91 validation
    at 0.6 against the released 0.4 model's 0.9 at 0.4 and 0.2 at 0.25)."""
    if r == 0.25:
        return ""
    return "ista-net_r0.4_np9_nf32" if r > 0.4 else "ista-net_r0.25_np9_nf32"


#: the network every Tier 2 model starts from under the cpu profile
TIER2_BASE = "ista-net_r0.25_np9_nf32"


def _build():
    z = []
    for r in TIER1_RATIOS:
        z.append(ZooEntry("ista-net", r, 1, init_from=_nearest_trained_ratio(r)))
        z.append(ZooEntry("reconnet-enhanced", r, 1))
    for r in (0.1, 0.25):
        # 0.25 trains from scratch beside ISTA-Net 0.25 (CAMPAIGN); 0.1 starts from ISTA-Net 0.1
        z.append(ZooEntry("fista-net", r, 1, init_from="" if r == 0.25 else "ista-net_r0.1_np9_nf32"))
        z.append(ZooEntry("reconnet", r, 1))
        z.append(ZooEntry("sda", r, 1))
    # Tier 2, all at ratio 0.25 with one budget; under the cpu profile every one is carried
    # from the Tier 1 ISTA-Net (learned/carry.py) and fine-tuned alike (see TIER2_CPU_BLOCKS)
    t2 = []
    for np_ in (5, 7, 9, 11, 13):  # Table 1
        t2 += [ZooEntry("ista-net", 0.25, 2, phases=np_), ZooEntry("fista-net", 0.25, 2, phases=np_)]
    for np_ in (7, 9, 11):  # Table 3 (7, 9) and Fig. 6a (11)
        t2 += [ZooEntry("ista-net-star", 0.25, 2, phases=np_),
               ZooEntry("fista-net-star", 0.25, 2, phases=np_)]
    for m in ("ista-net", "fista-net", "ista-net-star", "fista-net-star"):  # Fig. 6a, gamma = 0
        t2.append(ZooEntry(m, 0.25, 2, phases=11, gamma=0.0))
    for nf in (8, 16, 48, 64):  # Fig. 6b (nf 32 is the Np 9 model of Table 1)
        t2.append(ZooEntry("ista-net", 0.25, 2, nf=nf))
    t2 = [replace(e, init_from=TIER2_BASE) for e in t2]
    return z + t2


ZOO = _build()
_BY_NAME = {e.name: e for e in ZOO}


def entry(name):
    if name not in _BY_NAME:
        raise unknown_name("zoo model", name, _BY_NAME)
    return _BY_NAME[name]


def find(method, ratio, tier=1, **kw):
    """The zoo entry for a method at a ratio (and phases/nf/gamma), or None."""
    for e in ZOO:
        if e.method == method and abs(e.ratio - ratio) < 1e-9 and e.tier == tier and all(
                getattr(e, k) == v for k, v in kw.items()):
            return e
    return None


# -- training the zoo ------------------------------------------------------------------------
#: epochs per tier and profile. "cpu": what a 2-core machine can afford across sessions
#: (Tier 1 gets the larger budget, Tier 2 one smaller budget shared by every ablation model);
#: "paper": the paper's 300 epochs (for a GPU).
BUDGET = {("cpu", 1): 10, ("cpu", 2): 1, ("paper", 1): 300, ("paper", 2): 300}
#: Tier 1 "cpu" epochs per model where they differ from BUDGET. The budget follows what a
#: 2-core CPU affords (one ISTA-Net epoch is ~30 min of one core in fp32): the from-scratch
#: headline ISTA-Net 0.25 gets the most (CAMPAIGN); FISTA-Net starts from ISTA-Net with
#: mu = 0 (exact at step 0) and ISTA-Net 0.1 from the 0.25 network with Qinit solved for the
#: ratio, each fine-tuned one epoch (0: installed as is); ISTA-Net 0.2-0.6 fine-tune in short
#: epochs (FINETUNES); ReconNet and Enhanced ReconNet train from scratch (a warm start of
#: their FC layer to another ratio ignores the extra measurements with nested Phi); SDA, a
#: small fully connected net, gets 100 epochs. Each model's per-epoch validation is in its
#: training log (zoo_runs/<name>/log.csv).
CPU_EPOCHS = {"ista-net": 0, "fista-net": 1, "reconnet": 5, "reconnet-enhanced": 5, "sda": 100,
              "ista-net_r0.25_np9_nf32": 3, "ista-net_r0.1_np9_nf32": 1}


#: peak learning rate of a warm-started fine-tune (on the profile's schedule). With 1e-3 and a
#: fresh Adam state, a trained model is thrown far off first: FISTA-Net 0.25 from ISTA-Net
#: 0.25 (end loss 0.0017) ran at 0.054 after 180 steps, ISTA-Net 0.1 from 0.25 at 0.20.
#: 1e-4 is the authors' released learning rate.
FINETUNE_LR = 1e-4

#: Tier 2 under the cpu profile: every ablation model (Table 1, Table 3, Fig. 6) starts from
#: the Tier 1 ISTA-Net 0.25 (TIER2_BASE) carried to its Np and Nf (``learned/carry.py``: a
#: deeper net repeats the last phase, a shallower one keeps the first phases, a wider one
#: adds channels without effect at step 0, a narrower one keeps the first channels; FISTA-Net
#: starts with mu = 0), then fine-tunes on this many T91 blocks (one short epoch, 200 steps
#: of 64) at FINETUNE_LR with its own loss (L, L*, gamma). One budget for all: the models of a
#: table differ only in what the table compares, plus the carry itself, which favours the
#: base's Np = 9, Nf = 32 (it starts *as* the trained network; the others start near it).
#: The paper profile trains every Tier 2 model from scratch for 300 epochs instead.
TIER2_CPU_BLOCKS = 12_800

#: The campaign (issue 16): the headline networks train from scratch side by side, with one
#: schedule and one budget, in short epochs of CAMPAIGN_BLOCKS random T91 blocks (validated and
#: checkpointed after each, ~7 minutes of a core), CAMPAIGN[name] of them: 56 x 12,800 blocks
#: is ~8 passes over T91. Their start is CPU_INIT, the training study's best start
#: (results/training_study.md): every phase begins as the identity map, so step 0 already
#: computes Np gradient steps from Qinit y.
CAMPAIGN_BLOCKS = 12_800
CAMPAIGN = {"ista-net_r0.25_np9_nf32": 56, "fista-net_r0.25_np9_nf32": 56}
CPU_INIT = "identity"
#: The campaign's runs use torch.compile (`cs-bench bench`: ~1.1x the eager steps per
#: CPU-second on one thread; a compile failure falls back to eager), worth its ~30 s of
#: compiling per process only in runs of hours.
CAMPAIGN_COMPILE = True
#: The campaign's (schedule, peak learning rate): cosine from 1e-3 over its CAMPAIGN epochs,
#: fixed when it began (a resumed run keeps its schedule). The cpu profile's one-cycle, the
#: training study's winner at 11 short epochs, came later.
CAMPAIGN_SCHEDULE = ("cosine", 1e-3)

#: Continuations: a zoo model whose run has ended (by its budget or the stop rule, its
#: schedule decayed) trains on in a second run, ``zoo_runs/<name>.2``, warm-started from its
#: shipped weights with a fresh schedule (a warm restart, as in Loshchilov & Hutter's SGDR),
#: in short epochs of CAMPAIGN_BLOCKS, with the same stop rule. Its best epoch is installed
#: only if it validates higher. The headline ISTA-Net 0.25 ended its campaign still gaining
#: about 0.1 dB per 3 epochs before the decay (results/learning_curves.md); the one-cycle
#: starts at peak / 25 so a fresh Adam state does not throw the trained network off.
#: FISTA-Net 0.25 gets the same continuation as ISTA-Net 0.25, so Table 2 stays a comparison
#: at one schedule and budget.
@dataclass(frozen=True)
class Plan:
    """A zoo run in short epochs of CAMPAIGN_BLOCKS: its epoch budget and schedule."""

    epochs: int
    schedule: tuple  # (schedule, peak learning rate)
    precision: str = "fp32"


CONTINUE = {"ista-net_r0.25_np9_nf32": Plan(40, ("onecycle", 3e-4)),
            "fista-net_r0.25_np9_nf32": Plan(40, ("onecycle", 3e-4)),  # the same
            "ista-net_r0.1_np9_nf32": Plan(16, ("onecycle", 3e-4)),
            # where Enhanced ReconNet lags the paper most (4.2-4.5 dB after its 5 epochs, its
            # validation still rising): a warm restart at its first run's peak rate
            **{f"reconnet-enhanced_r{r}": Plan(40, ("onecycle", 1e-3)) for r in ("0.5", "0.6")}}

#: ISTA-Net 0.2-0.6 fine-tune from their warm start (:func:`_nearest_trained_ratio`) in short
#: epochs with the continuations' one-cycle and the stop rule. The gap to the paper grows
#: with the ratio: the 0.25 network carried to r validates under the authors' released 0.4
#: model (harness Phi) by 0.2 dB at 0.25, 0.9 at 0.4 and 1.4 at 0.6, and 300 steps of
#: fine-tuning at 0.4 gain ~0.1-0.3 dB of it, so the gap is training, not Qinit. 0.2, next to
#: the 0.25 network, gets 8 short epochs; 0.3-0.6 get 32 each. 0.4 is the start of 0.5 and 0.6
#: and the ISTA-Net0.4 row of Table 4.
FINETUNES = {"ista-net_r0.2_np9_nf32": Plan(8, ("onecycle", 3e-4)),
             **{f"ista-net_r{r}_np9_nf32": Plan(32, ("onecycle", 3e-4))
                for r in ("0.3", "0.4", "0.5", "0.6")}}
#: the run folder suffix of a continuation
CONTINUED = ".2"

#: The stop rule of every zoo run (``learned.train.plateau``): a model ends when its schedule
#: has decayed and its best T91 validation of the last STOP_EPOCHS epochs beats the best
#: before them by less than STOP_GAIN dB, or when its epoch budget is spent. Set11 targets
#: never stop a run: only validation on held-out T91 blocks decides.
STOP_GAIN = 0.05
STOP_EPOCHS = 3


def schedule_of(e, profile):
    """(schedule, peak learning rate) of zoo entry ``e``'s run under ``profile``: the
    profile's, or a warm-started fine-tune's rate (FINETUNE_LR)."""
    from ..learned.profiles import PROFILES

    if profile == "cpu" and e.name in CAMPAIGN:
        return CAMPAIGN_SCHEDULE
    if profile == "cpu" and e.name in FINETUNES:
        return FINETUNES[e.name].schedule
    p = PROFILES[profile]
    lr = FINETUNE_LR if init_for(e, profile) else p["lr"]
    return p["schedule"], lr


def init_for(e, profile):
    """The warm start of zoo entry ``e`` under ``profile`` ('' for none)."""
    if e.tier == 2 and profile != "cpu":
        return ""
    return e.init_from


def epochs_for(e, profile):
    """Training epochs of zoo entry ``e`` under ``profile`` (see BUDGET and CPU_EPOCHS).

    >>> epochs_for(entry("ista-net_r0.25_np9_nf32"), "cpu"), epochs_for(entry("sda_r0.1"), "cpu")
    (56, 100)
    >>> epochs_for(entry("ista-net_r0.1_np9_nf32"), "cpu")  # from the 0.25 net, Qinit for 0.1
    1
    >>> epochs_for(entry("ista-net_r0.2_np9_nf32"), "cpu")  # short epochs (FINETUNES)
    8
    >>> epochs_for(entry("ista-net_r0.25_np9_nf32"), "paper")
    300
    """
    if profile == "cpu" and e.name in CAMPAIGN:
        return CAMPAIGN[e.name]
    if profile == "cpu" and e.name in FINETUNES:
        return FINETUNES[e.name].epochs
    if profile == "cpu" and e.tier == 1:
        return CPU_EPOCHS.get(e.name, CPU_EPOCHS.get(e.method, BUDGET[(profile, 1)]))
    return BUDGET[(profile, e.tier)]
#: Tier 1 training order: the paper's headline models first (they get the longest budgets),
#: then ISTA-Net 0.4, the warm start of 0.5 and 0.6
PRIORITY = ("ista-net_r0.25_np9_nf32", "fista-net_r0.25_np9_nf32", "ista-net_r0.1_np9_nf32",
            "fista-net_r0.1_np9_nf32", "ista-net_r0.4_np9_nf32")
RUNS = "zoo_runs"  # checkpoints and logs, committed so training continues across sessions


def ordered(tier):
    es = [e for e in ZOO if e.tier == tier]
    rank = {n: i for i, n in enumerate(PRIORITY)}
    return sorted(es, key=lambda e: (rank.get(e.name, len(rank)), es.index(e)))


def shipped(name):
    """Metadata of the weights shipped in the package under ``name``, or None."""
    from ..learned import weights as wt

    p = wt.package_dir() / (name + wt.SUFFIX)
    return wt.read_meta(p) if p.is_file() else None


def _lock(run_dir):
    """Claim ``run_dir`` for this process (a ``.lock`` file holding the pid); False if another
    live process holds it, so two ``train-zoo`` calls can share a machine without both
    training one model. A lock whose process is gone is taken over."""
    import os

    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, ".lock")
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pid = _holder(run_dir)
            if pid and pid != os.getpid():
                return False
            try:
                os.remove(path)  # stale: its process has gone
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def _unlock(run_dir):
    import os

    try:
        os.remove(os.path.join(run_dir, ".lock"))
    except FileNotFoundError:
        pass


def epoch_blocks_for(e, profile):
    """Blocks per epoch of zoo entry ``e`` under ``profile`` (None: all of T91)."""
    if profile == "cpu" and (e.name in CAMPAIGN or e.name in FINETUNES):
        return CAMPAIGN_BLOCKS
    if (e.tier, profile) == (2, "cpu"):
        return TIER2_CPU_BLOCKS
    return None


def _blocks(epochs, epoch_blocks, training_blocks):
    return epochs * (epoch_blocks or training_blocks or 1)


def is_done(e, profile, meta, run_log=()):
    """Whether zoo entry ``e`` needs no more training: the shipped weights (``meta``) saw the
    budget's blocks, or its run (``run_log``, the rows of its log.csv) ended, by the budget
    or the stop rule, without beating them."""
    if not meta:
        return False
    epochs, per = epochs_for(e, profile), epoch_blocks_for(e, profile)
    whole = meta.get("training_blocks")
    seen = _blocks(meta.get("epochs_done", 0), meta.get("epoch_blocks"), whole)
    return seen >= _blocks(epochs, per, whole) or ended(run_log, epochs, *schedule_of(e, profile))


def ended(rows, epochs, schedule, lr):
    """Whether a run with log ``rows`` has ended: its ``epochs`` spent, or the stop rule."""
    from ..learned.train import plateau

    return bool(rows) and (int(rows[-1]["epoch"]) >= epochs > 0 or bool(
        plateau(rows, schedule, lr, STOP_GAIN, STOP_EPOCHS)))


def run_ended(run_dir, profile="cpu"):
    """Whether the zoo run in folder ``run_dir`` (``zoo_runs/<name>`` or its continuation
    ``<name>.2``) has ended under its plan; None for a folder no zoo model owns."""
    from pathlib import Path

    name = Path(run_dir).name
    base = name[: -len(CONTINUED)] if name.endswith(CONTINUED) else name
    if base not in _BY_NAME:
        return None
    if base != name:
        more = CONTINUE.get(base) if profile == "cpu" else None
        if more is None:
            return None
        plan = (more.epochs, *more.schedule)
    else:
        e = entry(base)
        plan = (epochs_for(e, profile), *schedule_of(e, profile))
    return ended(_run_log(run_dir), *plan)


def stale_start(e, profile, meta, run_dir):
    """The warm start of zoo entry ``e`` when it has changed since the shipped weights
    (``meta``) and the run in ``run_dir`` grew from it, else ''.

    The zoo installs better models under the same names, so a model derived from another
    (ISTA-Net at another ratio, FISTA-Net 0.1, every Tier 2 ablation) falls behind its
    source when the source improves; such a model trains again from the current source and
    is installed only if it then validates higher (:func:`promote`).
    """
    src, made, now = _source_shas(e, profile, meta)
    if made == now:
        return ""
    return "" if _run_source(run_dir) == now else src


def _regrowing(e, profile, meta, run_dir):
    """Whether the run in ``run_dir`` regrows zoo entry ``e`` from a warm start that has
    improved since the shipped weights (``meta``) were made: the shipped weights' budget
    then says nothing of that run, which is done only when it has ended."""
    src, made, now = _source_shas(e, profile, meta)
    return made != now and _run_source(run_dir) == now


def _source_shas(e, profile, meta):
    """(warm start, the sha256 of it the shipped weights ``meta`` grew from, its sha256
    now); the two shas are equal (None) where there is no warm start to compare."""
    from ..learned import weights as wt

    src = init_for(e, profile)
    made = (lineage(meta or {}) or {}).get("sha256")
    if not src or not made or not shipped(src):
        return src, None, None
    return src, made, wt.find(src).sha256


def lineage(meta):
    """The warm start a shipped model grew from, through its continuations: a continued
    model's own ``init_from`` is an earlier version of itself, so the zoo model it first grew
    from is recorded beside it as ``first_init_from``."""
    return meta.get("first_init_from") or meta.get("init_from")


#: the sha256 of the warm start a zoo run began from, a small committed file: a run's weights
#: files stay on the machine that trained it, and without it a regrown run that did not beat
#: the shipped model would look stale again in every fresh checkout
START = "start.json"


def _run_source(run_dir):
    """The sha256 of the warm start the run in ``run_dir`` began from (None: unknown)."""
    import json
    from pathlib import Path

    from ..learned import weights as wt

    run = Path(run_dir)
    if (run / START).is_file():
        return json.loads((run / START).read_text()).get("sha256")
    best = run / "best.safetensors"
    return (wt.read_meta(best).get("init_from") or {}).get("sha256") if best.is_file() else None


def _restart(run_dir):
    """Clear a run's checkpoint, best epoch and log (committed runs keep theirs in git)."""
    from pathlib import Path

    for f in ("checkpoint.safetensors", "best.safetensors", "log.csv", START):
        (Path(run_dir) / f).unlink(missing_ok=True)


def _record_start(run_dir, src):
    import json
    from pathlib import Path

    from ..files import atomic_write_text
    from ..learned import weights as wt

    Path(run_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(run_dir) / START,
                      json.dumps({"init_from": src, "sha256": wt.find(src).sha256}) + "\n")


def _run_log(run_dir):
    import csv
    from pathlib import Path

    path = Path(run_dir) / "log.csv"
    if not path.is_file():
        return []
    with open(path) as f:
        return list(csv.DictReader(f))


@dataclass(frozen=True)
class Step:
    """What ``train-zoo`` does next for one zoo model (:func:`next_step`)."""

    action: str  # "trains" (its own run), "continues" (its continuation), "waits" or "done"
    run: str  # the run folder it concerns
    why: str = ""  # trains: the improved warm start it regrows from; waits: what it waits for
    untrained: bool = False  # waits: for a warm start not trained at all yet
    epochs: int = 0  # trains, continues: the run's epoch budget


def next_step(e, profile="cpu", root="."):
    """What ``train-zoo`` does next for zoo entry ``e``, the one place that decides it.

    A model trains (or regrows, when its warm start has improved since its weights were
    made) unless it is done or its warm start is missing or still training; a done model
    with a continuation (CONTINUE) trains on in ``<name>.2`` until that run ends.

    >>> next_step(entry("ista-net_r0.25_np9_nf32"), root="/nowhere").action in ("trains", "done")
    True
    """
    run_dir = f"{root}/{RUNS}/{e.name}"
    meta = shipped(e.name)
    stale = stale_start(e, profile, meta, run_dir)
    rows = _run_log(run_dir)
    if stale or not is_done(e, profile, meta, rows) or (
            _regrowing(e, profile, meta, run_dir)
            and not ended(rows, epochs_for(e, profile), *schedule_of(e, profile))):
        src = init_for(e, profile)
        if src and not shipped(src):
            return Step("waits", run_dir, src, untrained=True)
        busy = src and _unsettled(src, profile, root)
        return Step("waits", run_dir, busy) if busy else Step(
            "trains", run_dir, stale, epochs=epochs_for(e, profile))
    more = CONTINUE.get(e.name) if profile == "cpu" else None
    if more is None:
        return Step("done", run_dir)
    rows = _run_log(run_dir + CONTINUED)
    if ended(rows, more.epochs, *more.schedule):
        return Step("done", run_dir + CONTINUED, rows[-1]["epoch"])
    return Step("continues", run_dir + CONTINUED, epochs=more.epochs)


def describe(step):
    """One line of what :func:`next_step` says, with the run's progress from its log and
    whether a process is training it now (its lock).

    >>> describe(Step("waits", "zoo_runs/x", "ista-net_r0.4_np9_nf32"))
    'waits for ista-net_r0.4_np9_nf32'
    """
    import os

    run = os.path.basename(step.run)
    if step.action == "waits":
        return f"waits for {step.why}" + (" (not trained yet)" if step.untrained else "")
    if step.action == "done":
        return "done" + (f" (continuation ended at epoch {step.why})" if step.why else "")
    rows = _run_log(step.run)
    done = int(float(rows[-1]["epoch"])) if rows and not step.why else 0
    what = "regrows from " + step.why + " (improved since)" if step.why else (
        f"{'continues' if step.action == 'continues' else 'trains'} in {run}")
    now = ", training now" if _holder(step.run) else ""
    of = f" of {step.epochs}" if step.epochs else ""
    per = epoch_cpu_seconds(rows) if step.epochs and not step.why else None
    left = (f", at most {(step.epochs - done) * per / 3600:.1f} CPU-h left at its pace"
            if per and step.epochs > done else "")
    return f"{what}: {done}{of} epochs done{left}{now}"


def epoch_cpu_seconds(rows, last=5):
    """The CPU-seconds one epoch of a run costs: the median over its last ``last`` epochs of
    the process CPU time its log (``cpu_seconds``, cumulative) records per epoch; None
    before two epochs with it. The median passes over the epochs that also paid for a
    restart (loading, compiling) or shared the CPU with other work.

    >>> epoch_cpu_seconds([{"epoch": k, "cpu_seconds": 600 * k + (90 if k == 3 else 0)}
    ...                    for k in range(6)])
    600.0
    """
    import statistics

    t = [(int(float(r["epoch"])), float(r["cpu_seconds"])) for r in rows
         if r.get("cpu_seconds") not in (None, "")]
    steps = [(b - a) / (k - j) for (j, a), (k, b) in zip(t, t[1:]) if k > j and b > a]
    return statistics.median(steps[-last:]) if steps else None


def _holder(run_dir):
    """The pid of the live process holding ``run_dir``'s lock (another user's too), or None."""
    import os

    try:
        pid = int(open(os.path.join(run_dir, ".lock")).read().strip() or 0)
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)  # raises if no such process
    except PermissionError:
        return pid  # alive, another user's
    except OSError:
        return None
    return pid


def train_zoo(tier=1, profile="cpu", device="auto", only=None, time_budget=None, root=".",
              log=print, threads=None):
    """Train every unfinished zoo model of a tier; install each into the package's weights
    folder when it validates higher than the shipped one (:func:`promote`).

    Each model trains in ``zoo_runs/<name>/`` with a checkpoint every epoch (and every few
    hundred steps); a run that finds a checkpoint resumes it. A model with a continuation
    (CONTINUE) then trains on in ``zoo_runs/<name>.2``. ``time_budget`` (seconds) stops the
    whole call when spent, resumable. :func:`next_step` decides what each model needs.
    """
    import time

    t0 = time.perf_counter()
    for e in ordered(tier):
        if only and e.name not in only:
            continue
        step = next_step(e, profile, root)
        if step.action == "waits":
            how = "" if step.untrained else " is training"
            log(f"{e.name}: waits for {step.why} (its warm start{how}); skipped")
            continue
        if step.action == "trains":
            src = init_for(e, profile)
            # the study's start for a cpu run from scratch; a warm start overwrites any start
            start = CPU_INIT if (profile == "cpu" and not src and e.unfolded) else "xavier"
            schedule, lr = schedule_of(e, profile)
            code = _train_run(e, step.run, log, t0, time_budget, stale=step.why,
                              init_from=src or None, init=start, epochs=epochs_for(e, profile),
                              schedule=schedule, lr=lr, epoch_blocks=epoch_blocks_for(e, profile),
                              profile=profile, device=device, threads=threads,
                              compile=CAMPAIGN_COMPILE and profile == "cpu"
                              and (e.name in CAMPAIGN or e.name in FINETUNES))
            if code is not None:
                return code
            step = next_step(e, profile, root)
            if step.action not in ("done", "continues"):
                continue  # another process trains it; its continuation waits
        else:
            meta = shipped(e.name)
            log(f"{e.name}: done ({meta['epochs_done'] if meta else 0} epochs shipped)")
        if step.action == "done":
            if step.why:
                log(f"{e.name}{CONTINUED}: done (continuation ended at epoch {step.why})")
            continue
        more = CONTINUE[e.name]
        schedule, lr = more.schedule
        code = _train_run(e, step.run, log, t0, time_budget, init_from=e.name, init="xavier",
                          epochs=more.epochs, schedule=schedule, lr=lr,
                          epoch_blocks=CAMPAIGN_BLOCKS, profile=profile, device=device,
                          threads=threads, compile=CAMPAIGN_COMPILE, precision=more.precision)
        if code is not None:
            return code
    return 0


def _unsettled(src, profile, root):
    """The run of warm start ``src`` (its own or its continuation's) while it has not ended,
    else '': a model grown from ``src`` now would be grown again once that run installs a
    better ``src``."""
    e, run = entry(src), f"{root}/{RUNS}/{src}"
    meta = shipped(src)
    if stale_start(e, profile, meta, run) or not is_done(e, profile, meta, _run_log(run)):
        return src
    more = CONTINUE.get(src) if profile == "cpu" else None
    if more is None:
        return ""
    rows = _run_log(run + CONTINUED)
    return "" if ended(rows, more.epochs, *more.schedule) else src + CONTINUED


def _train_run(e, run_dir, log, t0, time_budget, stale="", init_from=None, epoch_blocks=None,
               profile="cpu", **fields):
    """Train (or resume) one zoo run in ``run_dir`` and install its best epoch into ``e.name``
    when it validates higher. Returns an exit code to stop the whole call, None to go on."""
    import os
    import time

    from ..errors import CSBenchError
    from ..learned.train import TrainConfig, train

    left = None if time_budget is None else time_budget - (time.perf_counter() - t0)
    if left is not None and left <= 60:
        log("time budget spent; run again to continue")
        return 0
    label = os.path.basename(run_dir)
    short = {"epoch_blocks": epoch_blocks, "checkpoint_every": 50} if epoch_blocks else {}
    if not _lock(run_dir):
        log(f"{label}: being trained by another process; skipped")
        return None
    try:
        if stale:
            log(f"{label}: its warm start {stale} has improved since; trains again from it")
            _restart(run_dir)
        cfg = TrainConfig.from_profile(profile, method=e.method, ratio=e.ratio, phases=e.phases,
                                       nf=e.nf, gamma=e.gamma, name=e.name, out=run_dir,
                                       init_from=init_from, force=True, stop_gain=STOP_GAIN,
                                       stop_epochs=STOP_EPOCHS, time_budget=left, **short,
                                       **fields)
        resume = os.path.isfile(f"{run_dir}/checkpoint.safetensors")
        if init_from and not resume:
            _record_start(run_dir, init_from)
        log(f"{label}: {'resuming' if resume else 'training'} ({cfg.epochs} epochs, {profile})")
        result = train(cfg, resume=resume, install=False)
    finally:
        _unlock(run_dir)
    if result["status"] != "done":
        return 130 if result.get("interrupted") else 0
    try:
        log(f"{label}: ended by {result.get('ended') or 'its budget'}")
        promote(run_dir, e.name, log=log)
    except CSBenchError as exc:
        log(f"{e.name}: the shipped weights are kept: {exc}")
    return None


#: what a continued model keeps of the budget of the version it continues (``earlier``,
#: nested through repeated continuations), so its tables can state the whole budget
EARLIER_BUDGET = ("epochs_done", "epoch_blocks", "training_blocks", "wall_seconds",
                  "cpu_seconds", "init", "earlier")


def promote(run_dir, name, log=print):
    """Install the best epoch of a training run as the shipped zoo model ``name`` when it
    validates higher than the shipped one on the same T91 validation blocks.

    The zoo never regresses: a run of another network (method, ratio, Np, Nf, gamma, Phi),
    one validated on other blocks (another training-set recipe), or one that does not beat
    the shipped weights is refused with one line and nothing changes. The installed weights
    keep the run's metadata (epochs, schedule, start, CPU and wall time) and name the run.
    """
    from pathlib import Path

    from ..errors import CSBenchError
    from ..learned import checkpoint as ckpt
    from ..learned import weights as wt

    e = entry(name)
    run = Path(run_dir)
    best = run / "best.safetensors"
    if not best.is_file():
        raise CSBenchError(f"{run} holds no best.safetensors (no validated epoch yet)")
    meta, tensors = wt.read_meta(best), wt.read_tensors(best)
    want = {"method": e.method, "ratio": e.ratio}
    if e.unfolded:
        want.update(phases=e.phases, nf=e.nf, gamma=e.gamma)
    got = {k: meta.get(k) for k in want}
    if any(got[k] != v if k == "method" else abs(float(got[k] or -1) - v) > 1e-9
           for k, v in want.items()):
        raise CSBenchError(f"{run} trained {got}, not the zoo model {name} {want}")
    old = shipped(name)
    if old:
        if old.get("phi") != meta.get("phi"):
            raise CSBenchError(f"{run} used Phi {meta.get('phi')}, the shipped {name} "
                               f"{old.get('phi')}: not comparable")
        key, old_key = (meta.get("trainset") or {}).get("key"), (old.get("trainset") or {}).get("key")
        if key != old_key:
            raise CSBenchError(f"{run} validated on training set {key}, the shipped {name} on "
                               f"{old_key}: not comparable")
        if not meta["val_psnr"] > old["val_psnr"]:
            raise CSBenchError(f"{run} validates at {meta['val_psnr']:.2f} dB, not above the "
                               f"shipped {name} ({old['val_psnr']:.2f} dB); nothing installed")
    extra = {"promoted_from": run.name}
    if old and (meta.get("init_from") or {}).get("name") == name:  # a continuation
        extra["first_init_from"] = lineage(old)
        extra["earlier"] = {k: old.get(k) for k in EARLIER_BUDGET}
    log_rows = _run_log(run)
    if (run / "checkpoint.safetensors").is_file():
        from ..learned.train import TrainConfig, run_end

        cfg = ckpt.read_state(run / "checkpoint.safetensors")["config"]
        if meta.get("init") is None:
            extra["init"] = cfg.get("init")
        done = int(log_rows[-1]["epoch"]) if log_rows else 0
        extra["ended"] = (run_end(log_rows, TrainConfig.from_dict(cfg))
                          or f"not yet: promoted during the run, after epoch {done}")
    rows = [r for r in log_rows if r.get("epoch") == str(meta.get("best_epoch"))]
    if rows and rows[-1].get("cpu_seconds"):
        extra["cpu_seconds"] = float(rows[-1]["cpu_seconds"])
    path = wt.install(tensors, {**meta, **extra}, name, folder=wt.package_dir(), overwrite=True)
    before = f"{old['val_psnr']:.2f} dB" if old else "none shipped"
    log(f"{name}: installed the best epoch of {run} (T91 val {meta['val_psnr']:.2f} dB, was "
        f"{before}) into {path}")
    return path


def cmd_promote(args):
    promote(args.run, args.name)
    return 0


def add_commands(sub):
    s = sub.add_parser("train-zoo", help="train the zoo models the paper's tables need")
    s.add_argument("--tier", type=int, choices=[1, 2], default=1)
    s.add_argument("--profile", choices=["cpu", "paper"], default="cpu")
    s.add_argument("--device", default="auto")
    s.add_argument("--only", help="comma-separated zoo names")
    s.add_argument("--time-budget", help="stop after this long (e.g. 90m, 2h); resumable")
    s.add_argument("--threads", type=int, help="torch CPU threads (1 leaves a core free)")
    s.add_argument("--workers", type=int, default=1,
                   help="train this many models at once, one process each (default 1; on a "
                        "GPU several share it, on a CPU one per core)")
    s.add_argument("--probe", action="store_true",
                   help="first measure ISTA-Net training steps/s on the device for a few "
                        "seconds and say what an epoch costs and how many fit --time-budget")
    s.add_argument("--list", action="store_true", help="list the zoo and what is trained")
    s.set_defaults(func=cmd_train_zoo)
    s = sub.add_parser("zoo-promote", help="install a training run's best epoch as a zoo model "
                       "if it validates higher than the shipped one",
                       description="Example: cs-bench zoo-promote zoo_runs/study-identity "
                                   "ista-net_r0.25_np9_nf32")
    s.add_argument("run", help="a training run folder (with best.safetensors)")
    s.add_argument("name", help="the zoo model it replaces (cs-bench train-zoo --list)")
    s.set_defaults(func=cmd_promote)


def probe(device="auto", steps=10, batch=64, log=print):
    """ISTA-Net (Np 9, Nf 32) training steps per second on ``device`` (float32 Phi products,
    the configured precision's convolutions), after one warm-up step."""
    import time

    import torch

    from ..learned.losses import loss_terms
    from ..learned.nets import BlockOperator
    from ..learned.runtime import resolve_device
    from ..learned.spec import build
    from ..sensing import make_phi

    dev = resolve_device(device)
    Phi = torch.tensor(make_phi(0.25), dtype=torch.float32)
    op = BlockOperator(Phi, Phi.T.contiguous()).to(dev)
    net = build("ista-net", Phi.shape[0]).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    X = torch.rand(batch, 1089, device=dev)

    def step():
        out = net(X @ op.Phi.T, op, sym="block", s=X)
        loss = loss_terms(out, X, "L", 0.01)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    if str(dev).startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if str(dev).startswith("cuda"):
        torch.cuda.synchronize()
    rate = steps / (time.perf_counter() - t0)
    epoch = -(-88912 // batch) / rate
    log(f"probe on {dev}: {rate:.1f} ISTA-Net steps/s (batch {batch}), one epoch of 88,912 "
        f"blocks ~{epoch / 60:.1f} min per process")
    return rate


def cmd_train_zoo(args):
    if args.list:
        for t in (1, 2):
            for e in ordered(t):
                meta = shipped(e.name)
                state = (f"{meta['epochs_done']} ep, val {meta.get('val_psnr', float('nan')):.2f} dB"
                         if meta else "not trained")
                print(f"tier {t}  {e.name:<36} {state:<22} {describe(next_step(e, args.profile))}")
        return 0
    budget = None
    if args.time_budget:
        from ..learned.train import parse_duration

        budget = parse_duration(args.time_budget)
    only = [n.strip() for n in args.only.split(",")] if args.only else None
    for n in only or []:
        entry(n)
    if args.workers < 1:
        from ..errors import CSBenchError

        raise CSBenchError(f"--workers must be at least 1, got {args.workers}")
    if args.probe:
        rate = probe(args.device)
        if budget:
            epochs = budget * rate / -(-88912 // 64)
            print(f"--time-budget {args.time_budget}: ~{epochs:.1f} ISTA-Net epochs per worker "
                  f"(with {args.workers} workers sharing the device, each runs slower)")
    if args.workers > 1:
        return _spawn_workers(args)
    return train_zoo(args.tier, args.profile, args.device, only, budget, threads=args.threads)


def _spawn_workers(args):
    """``args.workers`` train-zoo processes; each takes the next model no other one holds
    (the run folder's lock), so they share the zoo without coordination."""
    import subprocess
    import sys
    import time

    cmd = [sys.executable, "-m", "cs_bench.cli", "train-zoo", "--tier", str(args.tier),
           "--profile", args.profile, "--device", args.device]
    for opt, v in (("--only", args.only), ("--time-budget", args.time_budget),
                   ("--threads", args.threads)):
        if v is not None:
            cmd += [opt, str(v)]
    procs = []
    for _ in range(args.workers):
        procs.append(subprocess.Popen(cmd))
        time.sleep(2)  # the next one then finds the first one's lock
    codes = [p.wait() for p in procs]
    return max(codes)
