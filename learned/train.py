"""Training the learned reconstructors, resumable, writing the weights format at the end.

The paper's settings (``profile="paper"``): Adam, learning rate 1e-3, batch 64, 300 epochs,
constant learning rate, float32, on the 88,912 T91 blocks of
:mod:`cs_bench.learned.trainset`. (The authors' released code uses lr 1e-4 and 200 epochs:
pass ``lr=1e-4, epochs=200`` to match it.)

The reduced ``profile="cpu"``: 5 epochs on the same blocks, the training study's winner
(``scripts/training_study.py``, on held-out T91 blocks): every unrolled phase starts as the
identity map (``init="identity"``) and the learning rate follows one cycle to 2e-3 (a warm-up
that leaves the identity start intact, then a cosine decay that lets the last epochs settle),
and ``precision="auto"`` (bf16 autocast where it pays off: CUDA, AMX CPUs; see
:mod:`cs_bench.learned.runtime`); everything else as the paper. ``threads`` sets torch's
CPU threads (1 is fastest on a CPU shared with other busy processes).

Each epoch: shuffle with ``default_rng([seed, 100, epoch])`` (stateless, so a resumed run
draws the same order), steps of Adam with the learning rate a pure function of the global
step (so the schedule needs no state), then the validation PSNR on the held-out blocks
(float32, outputs clipped to [0, 1], PSNR of the pooled MSE) picks the best checkpoint.
After every epoch, every ``checkpoint_every`` steps and when ``max_steps`` / ``time_budget``
stop the run, the full state goes to ``<run dir>/checkpoint.safetensors`` (see
:mod:`cs_bench.learned.checkpoint`); ``resume=True`` continues exactly (the same weights
as an uninterrupted run on the same machine). ``<run dir>/log.csv`` has one row per epoch
and ``<run dir>/best.safetensors`` the best epoch's weights; when every epoch is done those
are installed in the user weights folder as ``name``.

>>> cfg = TrainConfig(method="ista-net", ratio=0.25, phases=1, nf=4, epochs=1, batch=32,
...                   recipe=Recipe(source="synthetic", n_blocks=64, n_val=16))
>>> cfg.resolved_loss(), cfg.default_name()
('L', 'ista-net_r0.25_np1_nf4')
"""

import csv
import dataclasses
import io
import math
import os
import platform
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cs_bench.config import cache_dir
from cs_bench.errors import CSBenchError, WeightsError
from cs_bench.files import atomic_write_text
from cs_bench.sensing import check_ratio, load_phi, make_phi

from . import checkpoint as ckpt
from . import trainset as ts_mod
from . import weights as wt
from .carry import carry
from .losses import SYM_INPUTS, loss_terms, needs_sym
from .nets import BlockOperator, identity_init
from .spec import ARCH_OF, ARCHS, UNROLLED, build, method_for, spec
from .qinit import qinit
from .runtime import autocast, resolve_device, resolve_precision, set_threads
from .profiles import INITS, PROFILES, SCHEDULES  # noqa: F401 - part of this module's interface
from .trainset import Recipe

#: fields a resumed run must share with its checkpoint (``init_from`` only matters at the
#: start: a resumed run keeps the record of the warm start its checkpoint made)
FIXED = ("method", "ratio", "phases", "nf", "gamma", "init", "theta_init", "ema", "loss", "sym_input",
         "out_act", "mu_init", "mu_lr", "lr", "batch", "schedule", "seed", "recipe", "phi_seed", "phi_path", "epoch_blocks")


@dataclass
class TrainConfig:
    """Everything that defines a training run (see the module docstring)."""

    method: str
    ratio: float
    phases: int = 9
    nf: int = 32
    gamma: float = 0.01
    loss: str = None  # None: the method's (L for ista-net / fista-net, Lstar for -star)
    sym_input: str = "block"
    out_act: str = "linear"  # SDA output activation
    mu_init: float = 0.0  # FISTA-Net momentum initialisation
    mu_lr: float = None  # FISTA-Net mu's own Adam learning rate (None: lr), on lr's schedule
    init: str = "xavier"  # unrolled nets: "xavier" (the paper) or "identity" (nets.identity_init)
    theta_init: float = None  # unrolled nets: every phase's starting threshold (None: 0.01)
    ema: float = None  # decay of an exponential moving average of the weights, which is then
    # what is validated and installed (None: the weights themselves)
    validate_start: bool = False  # validate the fresh network as "epoch 0" (always on a warm start)
    epochs: int = 300
    lr: float = 1e-3
    batch: int = 64
    schedule: str = "constant"
    seed: int = 0
    precision: str = "fp32"
    device: str = "auto"
    profile: str = "paper"
    recipe: Recipe = field(default_factory=Recipe)
    phi_seed: int = 0
    phi_path: str = None  # a user's Phi (.npy / .mat) instead of the harness's
    init_from: str = None
    name: str = None
    out: str = None
    epoch_blocks: int = None  # blocks per epoch, a fresh random subset each epoch (None: all)
    max_steps: int = None  # stop this invocation after so many steps (resumable)
    time_budget: float = None  # seconds; stop this invocation after it (resumable)
    checkpoint_every: int = 200  # steps between mid-epoch checkpoints (0: epochs only)
    compile: bool = False
    threads: int = None  # torch CPU threads (None: torch's default)
    force: bool = False  # replace existing user weights of the same name
    stop_gain: float = None  # dB: end the run by the stop rule (see plateau); None: every epoch
    stop_epochs: int = 3  # the stop rule's window of epochs

    @classmethod
    def from_profile(cls, profile, **kw):
        if profile not in PROFILES:
            raise CSBenchError(f"unknown profile '{profile}'; valid: {', '.join(PROFILES)}")
        preset = dict(PROFILES[profile])
        if ARCH_OF.get(kw.get("method")) not in ("ista-net", "fista-net") or int(
                kw.get("nf") or 32) < 2:
            preset.pop("init")  # the identity start exists for ISTA-Net / FISTA-Net only
        return cls(**{**preset, "profile": profile, **kw})

    def resolved_loss(self):
        if self.loss is not None:
            return self.loss
        return spec(self.method).loss

    def resolved_method(self):
        """The registry name matching the arch and the loss (ista-net + Lstar = ista-net-star)."""
        return method_for(ARCH_OF[self.method], self.resolved_loss()) or self.method

    def default_name(self):
        return self.name or wt.default_name(self.resolved_method(), self.ratio, self.phases,
                                            self.nf)

    def run_dir(self):
        return Path(self.out) if self.out else cache_dir() / "runs" / self.default_name()

    def check(self):
        if self.method not in ARCH_OF:
            raise CSBenchError(f"'{self.method}' is not a trainable method; valid: "
                               f"{', '.join(ARCH_OF)}")
        self.ratio = check_ratio(self.ratio)
        arch = ARCH_OF[self.method]
        loss = self.resolved_loss()
        valid = ARCHS[arch].losses
        if loss not in valid:
            raise CSBenchError(f"loss '{loss}' does not apply to {self.method}; valid: "
                               f"{', '.join(valid)}")
        if self.sym_input not in SYM_INPUTS:
            raise CSBenchError(f"unknown sym_input '{self.sym_input}'; valid: "
                               f"{', '.join(SYM_INPUTS)}")
        if self.init not in INITS:
            raise CSBenchError(f"unknown init '{self.init}'; valid: {', '.join(INITS)}")
        if self.init != "xavier" and (arch not in ("ista-net", "fista-net") or self.nf < 2):
            raise CSBenchError(f"init '{self.init}' applies to ISTA-Net / FISTA-Net with nf >= 2")
        if self.theta_init is not None and (
                arch not in UNROLLED or not (math.isfinite(self.theta_init) and self.theta_init >= 0)):
            raise CSBenchError("theta_init (the starting threshold) must be a finite number >= 0 "
                               "and applies to the unrolled networks only")
        if self.stop_gain is not None and not (math.isfinite(self.stop_gain)
                                               and self.stop_gain >= 0):
            raise CSBenchError("stop_gain (the stop rule's least gain, dB) must be a finite "
                               "number >= 0")
        if int(self.stop_epochs) < 1:
            raise CSBenchError("stop_epochs (the stop rule's window) must be >= 1")
        if self.ema is not None and not 0 < self.ema < 1:
            raise CSBenchError("ema (the weight average's decay per step) must be between 0 and 1")
        if self.schedule not in SCHEDULES:
            raise CSBenchError(f"unknown schedule '{self.schedule}'; valid: {', '.join(SCHEDULES)}")
        for k in ("phases", "nf", "batch") + (("epoch_blocks",) if self.epoch_blocks is not None
                                             else ()):
            if int(getattr(self, k)) < 1:
                raise CSBenchError(f"{k} must be >= 1")
        if int(self.epochs) < 0 or (int(self.epochs) == 0 and not self.init_from):
            raise CSBenchError("epochs must be >= 1 (0 only with --init-from: the warm start "
                               "itself, validated and installed without training)")
        if self.gamma < 0 or self.lr <= 0:
            raise CSBenchError("gamma must be >= 0 and lr > 0")
        if self.mu_lr is not None and (arch != "fista-net" or not self.mu_lr > 0):
            raise CSBenchError("mu_lr (the momentum's learning rate) must be > 0 and applies to "
                               "fista-net only")
        self.recipe.check()
        return self

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["recipe"] = self.recipe.to_dict()
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d["recipe"] = Recipe(**d["recipe"])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def param_groups(net, cfg):
    """Adam's parameter groups: one, or with ``cfg.mu_lr`` two (FISTA-Net's mu apart).

    Each group carries ``lr_scale``, its learning rate over the schedule's ``lr_at``. Why mu
    gets its own: Adam moves a parameter by about the learning rate per step, so at 1e-4 a mu
    that starts at 0 (FISTA-Net warm-started exactly from ISTA-Net) moves by < 0.01 in 200
    steps and the network stays ISTA-Net; FISTA's own momentum weights are 0.2-0.8.

    >>> from cs_bench.learned.nets import build
    >>> net = build("fista-net", 272, phases=2, nf=4)
    >>> cfg = TrainConfig(method="fista-net", ratio=0.25, lr=1e-4, mu_lr=1e-2)
    >>> [(len(g["params"]), g["lr_scale"]) for g in param_groups(net, cfg)]
    [(12, 1.0), (2, 100.0)]
    """
    if cfg.mu_lr is None:
        return [{"params": list(net.parameters()), "lr_scale": 1.0}]
    named = list(net.named_parameters())
    mu = [p for n, p in named if n.rsplit(".", 1)[-1] == "mu"]
    rest = [p for n, p in named if n.rsplit(".", 1)[-1] != "mu"]
    return [{"params": rest, "lr_scale": 1.0}, {"params": mu, "lr_scale": cfg.mu_lr / cfg.lr}]


def lr_at(cfg, step, total_steps):
    """Learning rate at global ``step`` (0-based) of ``total_steps``.

    constant: lr. cosine: lr (1 + cos(pi t)) / 2, t = step / total. onecycle: the
    one-cycle policy of Smith (PyTorch's defaults): linear warm-up from lr/25 to lr over
    the first 30 % of the steps, then cosine down to lr/25e4.
    """
    t = min(step / max(total_steps, 1), 1.0)
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))
    if cfg.schedule == "onecycle":
        lo, end = cfg.lr / 25, cfg.lr / 25e4
        if t < 0.3:
            return lo + (cfg.lr - lo) * t / 0.3
        return end + (cfg.lr - end) * 0.5 * (1 + math.cos(math.pi * (t - 0.3) / 0.7))
    return cfg.lr


#: the stop rule counts a schedule as decayed once its learning rate is at most this fraction
#: of its peak (a constant schedule has no decay to wait for)
DECAYED = 0.1


def plateau(history, schedule, lr, gain, epochs=3):
    """The stop rule: why a run ends after the epochs of ``history`` (its log rows), or None.

    A run ends when its ``schedule`` (peak learning rate ``lr``) has decayed before its last
    ``epochs`` epochs (the epoch before them ended at a learning rate of at most
    :data:`DECAYED` x ``lr``) and the best validation PSNR of those epochs beats the best
    before them (the start's "epoch 0" included) by less than ``gain`` dB. Validation on
    held-out training blocks is all it reads.

    >>> rows = [{"epoch": e, "lr": 1e-3 if e < 3 else 1e-5, "val_psnr": v}
    ...         for e, v in enumerate([20.0, 24.0, 25.0, 25.5, 25.52, 25.53, 25.54])]
    >>> plateau(rows, "cosine", 1e-3, 0.05)
    'plateau: +0.04 dB over epochs 4-6 after the decay (rule: < 0.05 dB over 3 epochs)'
    >>> print(plateau(rows[:-1], "cosine", 1e-3, 0.05))  # epoch 3 ran before the decay
    None
    """
    trained = [r for r in history if int(float(r["epoch"])) >= 1]
    if gain is None or len(trained) < epochs + 1:
        return None
    window, before = trained[-epochs:], history[:len(history) - epochs]
    if schedule != "constant" and not float(before[-1]["lr"]) <= DECAYED * lr:
        return None
    best = max(float(r["val_psnr"]) for r in window) - max(float(r["val_psnr"]) for r in before)
    if not best < gain:
        return None
    first, last = (int(float(window[i]["epoch"])) for i in (0, -1))
    return (f"plateau: {best:+.2f} dB over epochs {first}-{last} "
            f"{'after the decay' if schedule != 'constant' else 'at a constant rate'} "
            f"(rule: < {gain:g} dB over {epochs} epochs)")


def run_end(history, cfg):
    """What ends a run with these log rows under ``cfg``: the stop rule, the epoch budget, or
    None (the run goes on)."""
    why = plateau(history, cfg.schedule, cfg.lr, cfg.stop_gain, int(cfg.stop_epochs))
    if why:
        return why
    done = max((int(float(r["epoch"])) for r in history), default=0)
    return f"budget: all {cfg.epochs} epochs" if done >= cfg.epochs else None


def ema_decay(decay, step):
    """The average's decay at optimizer step ``step`` (1-based): ``decay``, held lower early
    on, (1 + step) / (10 + step), so the average soon forgets the starting weights.

    >>> round(ema_decay(0.999, 1), 4), round(ema_decay(0.999, 10_000), 4)
    (0.1818, 0.999)
    """
    return min(decay, (1 + step) / (10 + step))


def git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5, check=False)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def val_psnr(net, op, X, device, batch=1024):
    """PSNR (dB) of the pooled MSE over blocks ``X`` (n x N, [0, 1]), outputs clipped."""
    was = net.training
    net.eval()
    se, count = 0.0, 0
    with torch.inference_mode():
        for i in range(0, X.shape[0], batch):
            x = torch.from_numpy(np.asarray(X[i:i + batch], dtype=np.float32)).to(device)
            y = x @ op.Phi.T
            xh = net(y, op).x.clamp(0, 1)
            se += float(((xh - x) ** 2).sum(dtype=torch.float64))
            count += x.numel()
    net.train(was)
    mse = se / max(count, 1)
    return float("inf") if mse == 0 else float(10 * math.log10(1.0 / mse))


def _phi(cfg):
    if cfg.phi_path:
        Phi = load_phi(cfg.phi_path)
        return Phi, {"kind": "stored", "source": str(cfg.phi_path)}
    return make_phi(cfg.ratio, cfg.phi_seed), {"kind": "harness", "seed": int(cfg.phi_seed)}


def nearest_weights(cfg, exclude=None):
    """The available weights of ``cfg``'s method (same phases and nf for the unrolled nets)
    trained at the ratio nearest to ``cfg.ratio`` (another ratio than the target name's)."""
    method = cfg.resolved_method()
    best = None
    for e in wt.available():
        if e.name == exclude:
            continue
        try:
            m = e.meta()
        except CSBenchError:
            continue
        if m.get("method") != method or m.get("ratio") is None:
            continue
        if ARCH_OF[method] in UNROLLED and (m.get("phases"), m.get("nf")) != (cfg.phases, cfg.nf):
            continue
        d = abs(float(m["ratio"]) - cfg.ratio)
        if best is None or d < best[0]:
            best = (d, e.name)
    if best is None:
        raise WeightsError(f"--init-from nearest: no trained {method} weights"
                           + (f" with {cfg.phases} phases and nf {cfg.nf}"
                              if ARCH_OF[method] in UNROLLED else "") + " to start from")
    return best[1]


def warm_start(net, arch, name):
    """Initialise ``net`` from the weights ``name``; returns the record kept in the metadata.

    ISTA-Net and FISTA-Net are interchangeable (FISTA-Net from ISTA-Net keeps mu(k) at its
    initial value 0, i.e. starts *as* that ISTA-Net), at any Np and Nf (:func:`carry`: a
    deeper net repeats the source's last phase, a wider one adds channels that start
    without effect on the output). The other networks copy the tensors whose names and
    shapes match; ReconNet's FC layer only copies at the same M (:func:`train` carries it to
    another M with :func:`transfer_fc`).
    """
    entry = wt.find(name)
    meta = entry.meta()
    src_arch = meta.get("arch")
    family = ARCHS[arch].warm_family
    if src_arch not in ARCHS or ARCHS[src_arch].warm_family != family:
        raise WeightsError(f"cannot initialise {arch} from '{name}' ({src_arch} weights)")
    src = {k[4:]: v for k, v in wt.read_tensors(entry.path).items() if k.startswith("net.")}
    own = net.state_dict()
    record = {"name": name, "sha256": entry.sha256, "ratio": meta.get("ratio"),
              "method": meta.get("method")}
    if family == "ista":  # ISTA-Net / FISTA-Net phases, any Np and Nf: learned/carry.py
        rec = carry(own, src)
        net.load_state_dict(own)
        return {**record, "copied": rec.pop("copied"), "skipped": [], "carry": rec}
    copied, skipped = [], []
    with torch.no_grad():
        for k, v in src.items():
            if k in own and own[k].shape == v.shape:
                own[k].copy_(v)
                copied.append(k)
            else:
                skipped.append(k)
    net.load_state_dict(own)
    return {**record, "copied": len(copied), "skipped": skipped}


def transfer_fc(net, name, R, Phi_b):
    """Carry a ReconNet FC layer to a new ratio: ``fc.W_b = W_a Phi_a Qinit_b``.

    The source's first layer maps y_a = Phi_a x to t = W_a y_a + b_a. The least-squares
    estimate of x from y_b = Phi_b x is Qinit_b y_b (Qinit_b = R Phi_b^T (Phi_b R Phi_b^T)^-1,
    as ISTA-Net's Eq. 12 on the training blocks' second moment R), so the best linear
    estimate of t from y_b is W_a Phi_a Qinit_b y_b + b_a: the convolutions that follow see
    what they were trained on, as well as the fewer (or more) measurements allow. With the
    harness's nested Phi and M_b > M_a this is exactly ``[W_a, 0]``: the source network,
    ignoring the extra measurements (Phi_b Qinit_b = I), which a fine-tune must then learn
    to use; towards fewer measurements it is a genuine least-squares fit.
    """
    entry = wt.find(name)
    meta, src = entry.meta(), wt.read_tensors(entry.path)
    if "Phi" in src:
        Phi_a = src["Phi"].double().numpy()
    else:
        Phi_a = make_phi(float(meta["ratio"]), int((meta.get("phi") or {}).get("seed", 0)))
    W_a = src["net.fc.weight"].double().numpy()
    W_b = W_a @ np.asarray(Phi_a, dtype=np.float64) @ qinit(R, Phi_b)
    with torch.no_grad():
        net.fc.weight.copy_(torch.from_numpy(W_b))
        net.fc.bias.copy_(src["net.fc.bias"])
    return "W_a Phi_a Qinit_b"


def _write_log(path, history):
    cols = ["epoch", "steps", "lr", "train_loss", "train_mse", "train_sym", "val_psnr",
            "seconds", "blocks_per_s", "cpu_seconds"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in history:
        w.writerow(row)
    atomic_write_text(path, buf.getvalue())


def _parse_steps(n_blocks, batch):
    return -(-n_blocks // batch)


def _fixed_mismatch(cfg, stored):
    a, b = cfg.to_dict(), stored.to_dict()
    return [k for k in FIXED if a.get(k) != b.get(k)]


def train(cfg, resume=False, trainset=None, progress=True, log=print, install=True):
    """Run (or resume) a training; returns a dict with ``status``, ``weights``, ``run_dir``.

    ``trainset`` overrides ``cfg.recipe``'s blocks (tests); ``status`` is "done" (weights
    installed) or "stopped" (``max_steps`` / ``time_budget`` reached; resume later).
    ``install=False`` leaves the best epoch in the run folder (``best.safetensors``) for the
    caller to install (the zoo installs it only if it beats the shipped model).
    """
    run = _Run(cfg, resume, trainset, log)
    run.prepare()
    run.build()
    if (run.init_record is not None or cfg.validate_start) and not resume:
        run.validate_start()
    if resume:
        run.recover_best()
    stopped = run.loop(progress)
    if stopped:
        return run.stopped(stopped)
    if not install:
        return {**run.result(), "status": "done", "weights": None}
    return run.install()


class _Run:
    """One training run, in the order :func:`train` calls its steps: ``prepare`` (checks,
    blocks, Phi, Qinit), ``build`` (network, warm start, optimizer, resume), ``validate_start``
    ("epoch 0"), ``loop`` (epochs of Adam steps, validation, checkpoints), then ``install``
    (the best epoch's weights) or ``stopped`` (resumable)."""

    def __init__(self, cfg, resume, trainset, log):
        cfg.check()
        self.cfg, self.resume, self.trainset, self.log = cfg, resume, trainset, log
        self.t_start = time.perf_counter()
        self.cpu_start = time.process_time()  # process CPU time: the study's budget unit
        self.arch = ARCH_OF[cfg.method]
        self.method = cfg.resolved_method()
        self.loss_name = cfg.resolved_loss()
        self.name = wt.check_name(cfg.default_name())
        self.run_dir = cfg.run_dir()
        self.ckpt_path = self.run_dir / "checkpoint.safetensors"
        self.init_record = None
        self.epoch = self.step_in_epoch = self.global_step = self.steps_this_run = 0
        self.history, self.best = [], {"val_psnr": -float("inf"), "epoch": None}
        self.best_state = None  # the best epoch's state dict, carried by every checkpoint
        self.acc, self.wall_before, self.cpu_before, self.perm = [0.0, 0.0, 0.0, 0], 0.0, 0.0, None
        self.ended = None  # what ended the run (run_end), once it has

    # -- checks, data, Phi, Qinit --------------------------------------------------------
    def prepare(self):
        cfg = self.cfg
        self.device = resolve_device(cfg.device)
        set_threads(cfg.threads)
        _busy_cpu_hint(self.device, cfg.threads, self.log)
        self.precision = resolve_precision(cfg.precision, self.device)
        user_path = wt.user_dir() / (self.name + wt.SUFFIX)
        if user_path.exists() and not (cfg.force or self.resume):
            raise WeightsError(f"weights '{self.name}' already exist ({user_path}); pass --force "
                               f"to replace them, --name to pick another name, or --resume")
        if self.resume:
            self._check_resumable()
        elif self.ckpt_path.exists() and not cfg.force:
            raise CSBenchError(f"{self.run_dir} already holds a checkpoint: pass --resume to "
                               f"continue it or --force to start over")
        self.data = self.trainset if self.trainset is not None else ts_mod.load(cfg.recipe)
        self.Phi_np, self.phi_info = _phi(cfg)
        self.M = self.Phi_np.shape[0]
        self.Qinit_np = qinit(self.data.moment, self.Phi_np) if self.arch in UNROLLED else None
        Phi_t = torch.tensor(self.Phi_np, dtype=torch.float32)
        self.Q_t = (torch.tensor(self.Qinit_np, dtype=torch.float32)
                    if self.Qinit_np is not None else Phi_t.T)
        self.op = BlockOperator(Phi_t, self.Q_t).to(self.device)
        self.n = self.data.train.shape[0]
        self.n_epoch = min(int(cfg.epoch_blocks or self.n), self.n)  # short epochs validate more
        self.steps_per_epoch = _parse_steps(self.n_epoch, cfg.batch)
        self.total_steps = self.steps_per_epoch * cfg.epochs

    def _check_resumable(self):
        cfg = self.cfg
        if not self.ckpt_path.is_file():
            raise CSBenchError(f"nothing to resume: {self.ckpt_path} does not exist")
        stored = TrainConfig.from_dict(ckpt.read_state(self.ckpt_path)["config"])
        bad = _fixed_mismatch(cfg, stored)
        if bad:
            raise CSBenchError(f"cannot resume {self.run_dir}: the checkpoint was made with "
                               f"different {', '.join(bad)} (" + ", ".join(
                                   f"{k}={getattr(stored, k)!r}" for k in bad) + ")")
        if cfg.epochs != stored.epochs and cfg.schedule != "constant":
            raise CSBenchError(f"cannot change epochs ({stored.epochs} -> {cfg.epochs}) of a "
                               f"'{cfg.schedule}' schedule on resume")

    # -- network, warm start, optimizer, resume --------------------------------------------
    def build(self):
        cfg, arch = self.cfg, self.arch
        torch.manual_seed(cfg.seed)
        net = build(arch, self.M, cfg.phases, cfg.nf, cfg.out_act, cfg.mu_init)
        if cfg.init == "identity":
            identity_init(net)
        if cfg.theta_init is not None:  # with the identity start and 0: step 0 gives x(0)
            with torch.no_grad():
                for layer in net.layers:
                    layer.theta.fill_(cfg.theta_init)
        if cfg.init_from and not self.resume:
            source = (nearest_weights(cfg, exclude=self.name) if cfg.init_from == "nearest"
                      else cfg.init_from)
            rec = warm_start(net, arch, source)
            if arch in ("reconnet", "reconnet-enhanced") and "fc.weight" in rec["skipped"]:
                rec["fc"] = transfer_fc(net, source, self.data.moment, self.Phi_np)
                rec["skipped"] = [k for k in rec["skipped"] if not k.startswith("fc.")]
            self.init_record = rec
            self.log(f"warm start from '{source}' ({rec['copied']} tensors copied)")
        net.to(self.device).train()
        self.net = net
        self.ema = None
        if cfg.ema is not None:  # starts as the weights; the checkpoint's on resume
            import copy

            self.ema = copy.deepcopy(net).eval().requires_grad_(False)
        self.opt = torch.optim.Adam(param_groups(net, cfg), lr=cfg.lr)
        self.fwd = net
        if cfg.compile:
            try:
                self.fwd = torch.compile(net)
            except Exception as exc:  # noqa: BLE001 - no compiler, unsupported platform
                self.log(f"torch.compile unavailable ({type(exc).__name__}); running eagerly")
        if self.resume:
            state, perm_t = ckpt.load(self.ckpt_path, net, self.opt, ema=self.ema)
            self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
            self.global_step, self.history = state["global_step"], state["history"]
            self.best, self.acc, self.wall_before = state["best"], state["acc"], \
                state["wall_seconds"]
            self.cpu_before = float(state.get("cpu_seconds", 0.0))
            self.init_record = state.get("init_from_record", self.init_record)
            self.perm = perm_t.numpy() if perm_t is not None else None
            self.best_state = ckpt.read_best(self.ckpt_path)
            self.log(f"resuming {self.run_dir} at epoch {self.epoch + 1}, step "
                     f"{self.step_in_epoch}/{self.steps_per_epoch}")
        self.run_dir.mkdir(parents=True, exist_ok=True)

    # -- records ---------------------------------------------------------------------------
    def cpu_seconds(self):
        return round(self.cpu_before + time.process_time() - self.cpu_start, 2)

    def wall_seconds(self):
        return self.wall_before + time.perf_counter() - self.t_start

    def base_meta(self):
        cfg, arch, unrolled = self.cfg, self.arch, self.arch in UNROLLED
        data = self.data
        return {
            "method": self.method, "arch": arch, "ratio": cfg.ratio, "M": int(self.M),
            "phi": self.phi_info,
            "phases": cfg.phases if unrolled else None, "nf": cfg.nf if unrolled else None,
            "gamma": cfg.gamma if unrolled else None, "loss": self.loss_name,
            "sym_input": cfg.sym_input if unrolled else None,
            "out_act": cfg.out_act if arch == "sda" else None,
            "mu_init": cfg.mu_init if arch == "fista-net" else None,
            "mu_lr": cfg.mu_lr if arch == "fista-net" else None,
            "init": cfg.init if unrolled else None,
            "theta_init": cfg.theta_init if unrolled else None,
            "lr": cfg.lr, "batch": cfg.batch, "schedule": cfg.schedule, "seed": cfg.seed,
            "profile": cfg.profile, "epochs_planned": cfg.epochs,
            "training_blocks": int(self.n), "epoch_blocks": int(self.n_epoch),
            "validation_blocks": int(data.val.shape[0]),
            "trainset": {"recipe": data.recipe.to_dict(), "key": data.key,
                         "val_images_held_out": list(data.val_names)},
            "device": self.device, "device_name": _device_name(self.device),
            "precision": self.precision, "threads": torch.get_num_threads(),
            "compiled": self.fwd is not self.net, "ema": cfg.ema,
            "torch": torch.__version__, "git_commit": git_commit(),
            "init_from": self.init_record, "source": "cs-bench train",
        }

    def weight_tensors(self, state=None):
        """The weights file's tensors of the state dict ``state`` (default: the network now),
        with Qinit and a stored Phi: the file needs nothing else to reconstruct."""
        state = self.eval_net().state_dict() if state is None else state
        t = {f"net.{k}": v.float() for k, v in state.items()}
        if self.Qinit_np is not None:
            t["Qinit"] = self.Q_t
        if self.phi_info["kind"] == "stored":
            t["Phi"] = torch.tensor(self.Phi_np, dtype=torch.float64)
        return t

    def eval_net(self):
        """What is validated and installed: the weight average when there is one."""
        return self.ema if self.ema is not None else self.net

    def save_ckpt(self):
        st = {"config": self.cfg.to_dict(), "epoch": self.epoch,
              "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
              "history": self.history, "best": self.best, "acc": self.acc,
              "wall_seconds": self.wall_seconds(), "cpu_seconds": self.cpu_seconds(),
              "init_from_record": self.init_record}
        ckpt.save(self.ckpt_path, self.net, self.opt, st, perm=self.perm, ema=self.ema,
                  best=self.best_state)

    def record_best(self, psnr, row):
        self.best = {"val_psnr": psnr, "epoch": row["epoch"], "train_loss": row["train_loss"]}
        self.best_state = {k: v.detach().cpu().clone()
                           for k, v in self.eval_net().state_dict().items()}
        self.write_best(row)

    def write_best(self, row):
        """``best.safetensors``: the best epoch's network (``best_state``) in the weights
        format, what the run installs when it ends."""
        wt.save(self.run_dir / "best.safetensors", self.weight_tensors(self.best_state),
                {**self.base_meta(), "name": self.name, "epochs_done": row["epoch"],
                 "best_epoch": row["epoch"], "val_psnr": self.best["val_psnr"],
                 "final_train_loss": row["train_loss"], "wall_seconds": self.wall_seconds()})

    # -- "epoch 0" ---------------------------------------------------------------------------
    def validate_start(self):
        """The start itself (a warm start, or ``validate_start``) is a candidate for the best
        checkpoint, so a fine-tune never installs something worse than where it started
        (and epochs=0 installs a warm start as is, e.g. a trained net with a new Qinit)."""
        psnr0 = val_psnr(self.eval_net(), self.op, self.data.val, self.device)
        row0 = {"epoch": 0, "steps": 0, "lr": 0.0, "train_loss": None, "train_mse": None,
                "train_sym": None, "val_psnr": psnr0, "seconds": 0.0, "blocks_per_s": 0.0,
                "cpu_seconds": self.cpu_seconds()}
        self.history.append(row0)
        if math.isfinite(psnr0):
            self.record_best(psnr0, row0)
        self.log(f"{'warm start' if self.init_record else 'start'} (epoch 0): val PSNR "
                 f"{psnr0:.2f} dB")
        _write_log(self.run_dir / "log.csv", self.history)

    def recover_best(self):
        """The best epoch of a resumed run, in its checkpoint and in ``best.safetensors``.

        * The checkpoint carries it and the file is missing (a checkout that carried only
          the checkpoint): the file is written again from the checkpoint.
        * An older checkpoint that does not carry it: it is read from the file, and every
          later checkpoint carries it.
        * Neither has it: those weights are lost, so the best is chosen again among what is
          here: the checkpoint's own weights when it was written at an epoch's end (validated
          again now), then every later epoch.
        """
        best_file = self.run_dir / "best.safetensors"
        if self.best.get("epoch") is None:
            return
        if best_file.is_file():
            if self.best_state is None:
                self.best_state = {k[len("net."):]: v
                                   for k, v in wt.read_tensors(best_file).items()
                                   if k.startswith("net.")}
            return
        rows = [r for r in self.history if r["epoch"] == self.best["epoch"]]
        if self.best_state is not None and rows:
            self.write_best(rows[-1])
            self.log(f"{self.run_dir}: the best epoch's weights (epoch {self.best['epoch']}, "
                     f"val PSNR {self.best['val_psnr']:.2f} dB) written again from the "
                     f"checkpoint")
            return
        lost = self.best
        self.best = {"val_psnr": -float("inf"), "epoch": None}
        self.log(f"{self.run_dir}: the best epoch's weights (epoch {lost['epoch']}, val PSNR "
                 f"{lost['val_psnr']:.2f} dB) are not here; the best is chosen again from "
                 f"epoch {self.epoch} on")
        if self.step_in_epoch == 0 and self.history:
            row = self.history[-1]
            psnr = val_psnr(self.eval_net(), self.op, self.data.val, self.device)
            if math.isfinite(psnr):
                self.record_best(psnr, row)
                self.log(f"epoch {row['epoch']} (the checkpoint): val PSNR {psnr:.2f} dB")

    # -- the epochs --------------------------------------------------------------------------
    def stop_reason(self, signals):
        cfg = self.cfg
        if signals.requested:
            return signals.requested
        if cfg.max_steps and self.steps_this_run >= cfg.max_steps:
            return f"max_steps={cfg.max_steps}"
        if cfg.time_budget and time.perf_counter() - self.t_start >= cfg.time_budget:
            return f"time budget {cfg.time_budget:g}s"
        return None

    def step(self, x, sym):
        """One Adam step on blocks ``x`` at the schedule's learning rate."""
        cfg = self.cfg
        lr = lr_at(cfg, self.global_step, self.total_steps)
        for g in self.opt.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)  # older checkpoints: one group
        with autocast(self.precision, self.device):
            y = x @ self.op.Phi.T
            out = self.forward(y, sym, x)
            terms = loss_terms(out, x, loss=self.loss_name, gamma=cfg.gamma if sym else 0.0)
        self.opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        self.opt.step()
        if self.ema is not None:
            d = ema_decay(self.cfg.ema, self.global_step + 1)
            with torch.no_grad():
                torch._foreach_lerp_(list(self.ema.parameters()), list(self.net.parameters()),
                                     1 - d)
        b, a = x.shape[0], self.acc
        self.acc = [a[0] + float(terms["loss"].detach()) * b, a[1] + float(terms["mse"].detach()) * b,
                    a[2] + float(terms["sym"].detach()) * b, a[3] + b]
        self.step_in_epoch += 1
        self.global_step += 1
        self.steps_this_run += 1
        return lr

    def forward(self, y, sym, x):
        """The network's training forward pass; a compiled network that fails to compile
        (torch.compile compiles at its first call) falls back to the eager one, once."""
        try:
            return self.fwd(y, self.op, sym=sym, s=x)
        except Exception as exc:  # noqa: BLE001 - no C compiler, an unsupported op or platform
            if self.fwd is self.net:
                raise
            self.log(f"torch.compile failed ({type(exc).__name__}: "
                     f"{str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ''}); "
                     f"running eagerly")
            self.fwd = self.net
            return self.net(y, self.op, sym=sym, s=x)

    def end_epoch(self, seconds, steps_before, lr):
        """Validate, record, pick the best checkpoint, write the log."""
        cfg = self.cfg
        psnr = val_psnr(self.eval_net(), self.op, self.data.val, self.device)
        if not math.isfinite(psnr) and psnr != float("inf"):
            self.log(f"epoch {self.epoch + 1}: validation PSNR is {psnr} (diverged?)")
            psnr = -float("inf")
        a = self.acc
        row = {"epoch": self.epoch + 1, "steps": self.global_step, "lr": lr,
               "train_loss": a[0] / a[3], "train_mse": a[1] / a[3], "train_sym": a[2] / a[3],
               "val_psnr": psnr, "seconds": round(seconds, 2),
               "blocks_per_s": round((self.step_in_epoch - steps_before) * cfg.batch / seconds, 1),
               "cpu_seconds": self.cpu_seconds()}
        self.history.append(row)
        if psnr > self.best["val_psnr"]:
            self.record_best(psnr, row)
        self.log(f"epoch {self.epoch + 1}/{cfg.epochs}: loss {row['train_loss']:.6f}, "
                 f"val PSNR {psnr:.2f} dB, {row['blocks_per_s']:.0f} blocks/s")
        self.epoch += 1
        self.step_in_epoch, self.acc, self.perm = 0, [0.0, 0.0, 0.0, 0], None
        _write_log(self.run_dir / "log.csv", self.history)

    def loop(self, progress):
        """Epochs until done or a stop reason; returns the reason (None when done)."""
        from tqdm.auto import tqdm

        cfg, X = self.cfg, self.data.train
        sym = cfg.sym_input if needs_sym(self.arch, cfg.gamma) else None
        signals = _StopOnSignal(self.log)
        stopped, lr = None, 0.0
        with signals:
            while self.epoch < cfg.epochs and stopped is None and not self.plateaued():
                if self.perm is None or self.step_in_epoch == 0:
                    self.perm = np.random.default_rng([cfg.seed, 100, self.epoch]).permutation(
                        self.n)[:self.n_epoch]
                t_epoch = time.perf_counter()
                steps_before = self.step_in_epoch
                bar = tqdm(total=self.steps_per_epoch, initial=self.step_in_epoch,
                           disable=not progress, desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
                           leave=False, dynamic_ncols=True)
                while self.step_in_epoch < self.steps_per_epoch:
                    k = self.step_in_epoch
                    idx = self.perm[k * cfg.batch:(k + 1) * cfg.batch]
                    lr = self.step(torch.from_numpy(X[idx]).to(self.device), sym)
                    bar.update(1)
                    if self.step_in_epoch % 10 == 0:
                        bar.set_postfix(loss=f"{self.acc[0] / self.acc[3]:.5f}",
                                        val=_fmt(self.best["val_psnr"]))
                    if self.step_in_epoch == self.steps_per_epoch:
                        break
                    stopped = self.stop_reason(signals)
                    if stopped:
                        break
                    if cfg.checkpoint_every and self.global_step % cfg.checkpoint_every == 0:
                        self.save_ckpt()
                bar.close()
                if self.step_in_epoch == self.steps_per_epoch:
                    self.end_epoch(time.perf_counter() - t_epoch, steps_before, lr)
                    if self.epoch < cfg.epochs:
                        stopped = self.stop_reason(signals)
                self.save_ckpt()
        self.interrupted = bool(signals.requested)
        if stopped is None:
            self.ended = run_end(self.history, cfg) or f"budget: all {cfg.epochs} epochs"
        return stopped

    def plateaued(self):
        """Whether the stop rule ends the run before its next epoch (said once)."""
        cfg = self.cfg
        why = plateau(self.history, cfg.schedule, cfg.lr, cfg.stop_gain, int(cfg.stop_epochs))
        if why:
            self.log(f"{self.name}: {why}; the run ends after epoch {self.epoch} of {cfg.epochs}")
        return bool(why)

    # -- the end ---------------------------------------------------------------------------
    def result(self):
        return {"run_dir": str(self.run_dir), "name": self.name, "epochs_done": self.epoch,
                "best": self.best, "history": self.history, "ended": self.ended}

    def stopped(self, reason):
        self.log(f"stopped ({reason}) at epoch {self.epoch + 1}, step {self.step_in_epoch}/"
                 f"{self.steps_per_epoch}; continue with --resume (checkpoint {self.ckpt_path})")
        return {**self.result(), "status": "stopped", "weights": None,
                "interrupted": self.interrupted}

    def install(self):
        """Install the best epoch's weights in the user weights folder."""
        best_file = self.run_dir / "best.safetensors"
        if self.best["epoch"] is None or not best_file.is_file():
            raise CSBenchError(f"no epoch of {self.run_dir} gave a finite validation PSNR (the "
                               f"training diverged?): try a lower --lr; nothing was installed")
        tensors = wt.read_tensors(best_file)
        meta = wt.read_meta(best_file)
        last = self.history[-1] if self.history else {}
        meta.update({"epochs_done": self.epoch, "final_train_loss": last.get("train_loss"),
                     "final_val_psnr": last.get("val_psnr"), "ended": self.ended,
                     "wall_seconds": round(self.wall_seconds(), 1),
                     "cpu_seconds": self.cpu_seconds()})
        path = wt.install(tensors, meta, self.name, overwrite=True)
        self.log(f"weights '{self.name}' written to {path} (best epoch {self.best['epoch']}, "
                 f"val PSNR {self.best['val_psnr']:.2f} dB)")
        return {**self.result(), "status": "done", "weights": str(path)}


def _busy_cpu_hint(device, threads, log):
    """Suggest --threads 1 when the CPU is already busy (measured 2-4x faster there)."""
    if device != "cpu" or threads or not hasattr(os, "getloadavg"):
        return
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0]
    if cores > 1 and load > cores:
        log(f"the CPU is busy (load {load:.1f} on {cores} cores): --threads 1 is usually much "
            f"faster than {torch.get_num_threads()} threads then")


class _StopOnSignal:
    """While active, the first SIGINT / SIGTERM asks the loop to stop after the current step
    (it then checkpoints); a second SIGINT aborts at once. Main thread only."""

    def __init__(self, log):
        self.log, self.requested, self._old = log, None, {}

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = f"signal {signal.Signals(signum).name}"
        self.log(f"{signal.Signals(signum).name}: stopping after this step and saving a checkpoint "
                 f"(Ctrl-C again aborts without saving)")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


def _fmt(v):
    return "-" if v is None or not math.isfinite(v) else f"{v:.2f}"


def _device_name(device):
    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine()


def parse_duration(text):
    """'90' or '90s' -> 90.0, '20m' -> 1200.0, '2h' -> 7200.0 (seconds).

    >>> parse_duration("20m"), parse_duration("1.5h"), parse_duration("45")
    (1200.0, 5400.0, 45.0)
    """
    text = str(text).strip().lower()
    mult = {"s": 1, "m": 60, "h": 3600}.get(text[-1:], None)
    try:
        value = float(text[:-1]) * mult if mult else float(text)
    except ValueError:
        raise CSBenchError(f"'{text}' is not a duration (e.g. 3600, 90m, 2h)") from None
    if value <= 0:
        raise CSBenchError("the time budget must be positive")
    return value

