"""The learned-method subcommands of ``cs-bench``: train, weights list, import-official,
export-official.

The main CLI calls :func:`add_commands` with its subparsers; each subcommand sets
``func`` to a handler ``handler(args) -> int``. User errors are raised as
:class:`~cs_bench.errors.CSBenchError` (one line).

>>> import argparse
>>> p = argparse.ArgumentParser(prog="cs-bench"); sub = p.add_subparsers(dest="command")
>>> add_commands(sub)
>>> a = p.parse_args(["train", "ista-net", "--ratio", "0.25", "--profile", "cpu"])
>>> a.func.__name__, a.method, a.ratio, a.profile
('cmd_train', 'ista-net', 0.25, 'cpu')
"""

import dataclasses

from cs_bench.errors import CSBenchError

from . import weights as wt
from .spec import ARCH_OF
from .options import DEVICES, PRECISIONS
from .profiles import INITS, PROFILES, SCHEDULES
from .trainset import Recipe


def add_commands(subparsers):
    """Add ``train``, ``weights`` (``list``), ``import-official``, ``export-official``."""
    # -- train -------------------------------------------------------------------------
    p = subparsers.add_parser(
        "train", help="train a learned method (writes weights usable by 'run')",
        description="Train a learned reconstructor on T91 blocks. The 'paper' profile is the "
                    "paper's 300 epochs (days on a CPU); 'cpu', the default, is a 5-epoch "
                    "reduced run. Example: cs-bench train ista-net --ratio 0.25")
    p.add_argument("method", choices=sorted(ARCH_OF), help="method to train")
    p.add_argument("--ratio", type=float, required=True, help="sampling ratio, e.g. 0.25")
    p.add_argument("--profile", choices=sorted(PROFILES), default=None,
                   help="preset (default cpu): cpu = 5 epochs, cosine lr, bf16 where it pays "
                        "off; paper = the paper's 300 epochs, constant lr, fp32 (a GPU)")
    p.add_argument("--phases", type=int, help="ISTA-Net/FISTA-Net phases Np (default 9)")
    p.add_argument("--nf", type=int, help="feature maps Nf (default 32)")
    p.add_argument("--gamma", type=float, help="symmetry-constraint weight (default 0.01; 0 = off)")
    p.add_argument("--loss", choices=["L", "Lstar"], help="L (Eq. 14) or L* (Eq. 15); "
                   "default from the method (the -star methods use L*)")
    p.add_argument("--sym-input", choices=["block", "phase_input"],
                   help="symmetry term on the training block (paper, default) or on each "
                        "phase's input (authors' code)")
    p.add_argument("--init", choices=INITS,
                   help="start of the unrolled networks: xavier (the paper) or identity (every "
                        "phase the identity map); default from the profile")
    p.add_argument("--theta-init", type=float, metavar="THETA",
                   help="every phase's starting threshold (unrolled nets; default 0.01, the "
                        "paper's); 0 with the identity start makes the untrained net give x(0)")
    p.add_argument("--ema", type=float, metavar="DECAY",
                   help="validate and install an exponential moving average of the weights "
                        "with this decay per step (e.g. 0.999) instead of the weights")
    p.add_argument("--sda-output", choices=["linear", "sigmoid"], help="SDA output activation")
    p.add_argument("--epochs", type=int)
    p.add_argument("--stop-gain", type=float, metavar="DB",
                   help="stop rule: end the run once the schedule has decayed and the best T91 "
                        "validation of the last --stop-epochs epochs beats the earlier best by "
                        "less than DB (default: train every epoch)")
    p.add_argument("--stop-epochs", type=int, metavar="N", help="the stop rule's window (default 3)")
    p.add_argument("--lr", type=float, help="Adam (peak) learning rate (default from the profile)")
    p.add_argument("--mu-lr", type=float, help="FISTA-Net: the momentum mu's own learning rate "
                   "(default: --lr), on the same schedule")
    p.add_argument("--batch", type=int, help="batch size (default 64)")
    p.add_argument("--schedule", choices=SCHEDULES,
                   help="learning-rate schedule (default from the profile)")
    p.add_argument("--seed", type=int, help="seed of initialisation and shuffling (default 0)")
    p.add_argument("--precision", choices=PRECISIONS, help="fp32, bf16 (autocast) or auto")
    p.add_argument("--device", choices=DEVICES, help="auto (default), cpu or cuda")
    p.add_argument("--blocks", type=int, help="training blocks (default 88912)")
    p.add_argument("--val-blocks", type=int, help="validation blocks (default 2048)")
    p.add_argument("--trainset-seed", type=int, help="seed of the block sampling (default 0)")
    p.add_argument("--source", choices=["t91", "synthetic"],
                   help="training images: t91 (default) or synthetic smooth blocks (no data "
                        "needed; for tests and trials)")
    p.add_argument("--phi", dest="phi_path", metavar="FILE",
                   help="train with this Phi (.npy/.mat, M x 1089) instead of the harness's")
    p.add_argument("--init-from", metavar="NAME", help="warm start from these weights; "
                   "'nearest': the same method's weights at the nearest other ratio")
    p.add_argument("--resume", action="store_true", help="continue the run's checkpoint")
    p.add_argument("--out", metavar="DIR", help="run folder (default <cache>/runs/NAME)")
    p.add_argument("--name", help="weights name (default <method>_r<ratio>[_np<Np>_nf<Nf>], "
                   "the zoo's)")
    p.add_argument("--force", action="store_true", help="replace existing weights / run")
    p.add_argument("--max-steps", type=int, help="stop after so many steps (resumable)")
    p.add_argument("--epoch-blocks", type=int, metavar="N",
                   help="blocks per epoch, a fresh random subset of the training blocks each "
                        "epoch (default: all); short epochs validate and checkpoint more often")
    p.add_argument("--time-budget", metavar="T", help="stop after T (e.g. 3600, 90m, 2h)")
    p.add_argument("--checkpoint-every", type=int, help="steps between mid-epoch checkpoints")
    p.add_argument("--compile", action="store_true", default=None, help="use torch.compile")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: one per core; 1 is "
                   "fastest on a CPU busy with other work)")
    from cs_bench.cli import add_progress_option

    add_progress_option(p)
    p.set_defaults(func=cmd_train)

    # -- weights -----------------------------------------------------------------------
    w = subparsers.add_parser("weights", help="list the available learned weights")
    wsub = w.add_subparsers(dest="weights_command")
    wl = wsub.add_parser("list", help="list shipped and user weights")
    wl.set_defaults(func=cmd_weights_list)
    wf = wsub.add_parser(
        "fetch", help="download, verify and convert the authors' released models",
        description="Fetch the authors' released ISTA-Net / ISTA-Net+ (ISTA-Net-PyTorch, 200 "
                    "epochs) from GitHub, or from the folder in $CS_BENCH_RELEASE; every file is "
                    "checked against cs-bench's sha256 registry before it is read. Example: "
                    "cs-bench weights fetch release --ratios 0.25 --methods ista-net-plus")
    wf.add_argument("source", choices=["release"], help="what to fetch: 'release'")
    wf.add_argument("--methods", default="ista-net,ista-net-plus",
                    help="comma-separated: ista-net, ista-net-plus (default both)")
    wf.add_argument("--ratios", default="all",
                    help="comma-separated ratios, or 'all' (default: 0.01,0.04,0.1,0.25,0.3,0.4,0.5)")
    wf.set_defaults(func=cmd_weights_fetch)
    w.set_defaults(func=cmd_weights_list)

    # -- official release --------------------------------------------------------------
    i = subparsers.add_parser(
        "import-official", help="import an ISTA-Net-PyTorch checkpoint (authors' release)")
    i.add_argument("--checkpoint", required=True, metavar="PKL", help="net_params_<epoch>.pkl")
    i.add_argument("--phi", required=True, metavar="MAT", help="phi_0_<RR>_1089.mat")
    i.add_argument("--qinit", required=True, metavar="MAT", help="Initialization_Matrix_<RR>.mat")
    i.add_argument("--name", required=True, help="weights name to register")
    i.add_argument("--ratio", type=float, help="ratio (default: from M)")
    i.add_argument("--force", action="store_true", help="replace existing weights")
    i.set_defaults(func=cmd_import_official)

    e = subparsers.add_parser(
        "export-official", help="write weights in the ISTA-Net-PyTorch layout")
    e.add_argument("name", help="weights name")
    e.add_argument("dir", help="output folder")
    e.set_defaults(func=cmd_export_official)


#: ``train --profile`` when none is given (a resumed run keeps its own)
DEFAULT_PROFILE = "cpu"

_CFG_ARGS = {"phases": "phases", "nf": "nf", "gamma": "gamma", "loss": "loss",
             "sym_input": "sym_input", "init": "init", "theta_init": "theta_init", "ema": "ema", "sda_output": "out_act",
             "epochs": "epochs", "lr": "lr",
             "batch": "batch", "mu_lr": "mu_lr", "schedule": "schedule", "seed": "seed", "precision": "precision",
             "device": "device", "phi_path": "phi_path", "init_from": "init_from",
             "out": "out", "name": "name", "max_steps": "max_steps",
             "epoch_blocks": "epoch_blocks",
             "checkpoint_every": "checkpoint_every", "compile": "compile",
             "threads": "threads", "stop_gain": "stop_gain", "stop_epochs": "stop_epochs"}


#: the longest weights / run name (a file name with its suffix stays under 255 bytes)
MAX_NAME = 200


def check_train_args(args):
    """Refuse, in one line and before any work, numbers and names ``train`` cannot use."""
    import math

    from cs_bench.sensing import check_ratio

    check_ratio(args.ratio)
    for opt, lo in (("threads", 1), ("epochs", 1), ("batch", 1), ("blocks", 1),
                    ("val_blocks", 1), ("phases", 1), ("nf", 1), ("max_steps", 1),
                    ("epoch_blocks", 1), ("checkpoint_every", 0), ("seed", 0),
                    ("trainset_seed", 0), ("stop_epochs", 1)):
        v = getattr(args, opt, None)
        if v is not None and v < lo:
            raise CSBenchError(f"--{opt.replace('_', '-')} {v}: give an integer >= {lo}")
    for opt, positive in (("lr", True), ("mu_lr", True), ("gamma", False), ("theta_init", False),
                          ("stop_gain", False)):
        v = getattr(args, opt, None)
        if v is not None and not (math.isfinite(v) and (v > 0 if positive else v >= 0)):
            raise CSBenchError(f"--{opt.replace('_', '-')} {v}: give a finite number "
                               + ("> 0" if positive else ">= 0"))
    ema = getattr(args, "ema", None)
    if ema is not None and not 0 < ema < 1:
        raise CSBenchError(f"--ema {ema}: give a decay between 0 and 1 (e.g. 0.999)")
    name = getattr(args, "name", None)
    if name is not None:
        check_name(name)
    if getattr(args, "phi_path", None):
        from cs_bench.phifile import load_phi

        load_phi(args.phi_path)


def check_name(name):
    """A weights name usable as a file name: 1-200 characters, no path separators."""
    if not name or len(name) > MAX_NAME or "/" in name or "\\" in name or name in (".", ".."):
        raise CSBenchError(f"--name '{name[:40]}{'…' if len(name) > 40 else ''}': give 1 to "
                           f"{MAX_NAME} characters without '/' (a file name)")


def config_from_args(args):
    """A :class:`TrainConfig` from parsed ``train`` arguments (the checkpoint's on --resume)."""
    from .train import TrainConfig, parse_duration

    check_train_args(args)
    given = {field: getattr(args, a) for a, field in _CFG_ARGS.items()
             if getattr(args, a, None) is not None}
    given["force"] = bool(getattr(args, "force", False))
    if getattr(args, "time_budget", None) is not None:
        given["time_budget"] = parse_duration(args.time_budget)
    recipe_kw = {k: getattr(args, a) for a, k in
                 (("blocks", "n_blocks"), ("val_blocks", "n_val"), ("trainset_seed", "seed"),
                  ("source", "source"))
                 if getattr(args, a, None) is not None}
    if args.resume:
        probe = TrainConfig(method=args.method, ratio=args.ratio, **{
            k: v for k, v in given.items() if k in ("phases", "nf", "loss", "name", "out")})
        from . import checkpoint as ckpt

        path = probe.run_dir() / "checkpoint.safetensors"
        if not path.is_file():
            raise CSBenchError(f"nothing to resume: {path} does not exist (give --out or --name "
                               f"of the run)")
        stored = TrainConfig.from_dict(ckpt.read_state(path)["config"])
        if args.profile and args.profile != stored.profile:
            raise CSBenchError(f"cannot resume with --profile {args.profile}: the run used "
                               f"'{stored.profile}'")
        recipe = dataclasses.replace(stored.recipe, **recipe_kw)
        runtime = ("max_steps", "time_budget", "checkpoint_every", "device", "precision",
                   "compile", "force", "out", "threads")
        base = {k: v for k, v in stored.to_dict().items() if k not in runtime}
        base.update({"max_steps": None, "time_budget": None})
        cfg = TrainConfig.from_dict({**base, **given, "recipe": recipe.to_dict()})
        cfg.method, cfg.ratio = args.method, args.ratio
        if "precision" not in given:
            cfg.precision = stored.precision
        if "out" not in given:
            cfg.out = stored.out
        return cfg
    cfg = TrainConfig.from_profile(args.profile or DEFAULT_PROFILE, method=args.method,
                                   ratio=args.ratio, **given)
    cfg.recipe = Recipe(**recipe_kw)
    return cfg


def cmd_train(args):
    from .train import train

    cfg = config_from_args(args)
    result = train(cfg, resume=args.resume, progress=not args.no_progress)
    if result.get("interrupted"):
        return 130  # stopped by Ctrl-C / SIGTERM (checkpointed, resumable): not a finished run
    return 0 if result["status"] in ("done", "stopped") else 1


def _fmt(v, spec=""):
    if v is None:
        return "-"
    try:
        return format(v, spec)
    except (TypeError, ValueError):
        return str(v)


def weights_table():
    """Rows (list of dicts) describing every available weights file."""
    rows = []
    for e in wt.available():
        try:
            m = e.meta()
            err = ""
        except CSBenchError as exc:
            m, err = {}, str(exc)
        rows.append({
            "name": e.name, "method": m.get("method", "?"), "ratio": m.get("ratio"),
            "phases": m.get("phases"), "epochs": m.get("epochs_done"), "device": m.get("device"),
            "val_psnr": m.get("val_psnr"), "source": m.get("source") or "",
            "where": e.where + ("" if e.indexed else " (unindexed)"),
            "path": str(e.path), "error": err,
        })
    return rows


def cmd_weights_list(args):
    rows = weights_table()
    if not rows:
        print(f"no weights yet (package: {wt.package_dir()}, user: {wt.user_dir()}); train some "
              f"with e.g. 'cs-bench train ista-net --ratio 0.25 --profile cpu'")
        return 0
    head = ["name", "method", "ratio", "phases", "epochs", "device", "val PSNR", "source",
            "where"]
    table = [[r["name"], r["method"], _fmt(r["ratio"], "g"), _fmt(r["phases"]),
              _fmt(r["epochs"]), _fmt(r["device"]), _fmt(r["val_psnr"], ".2f"), r["source"],
              r["where"] if not r["error"] else "damaged: " + r["error"]] for r in rows]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *table)]
    for line in [head] + table:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip())
    print(f"package: {wt.package_dir()}\nuser:    {wt.user_dir()}")
    return 0


def cmd_weights_fetch(args):
    from . import release

    archs = [m.strip() for m in args.methods.split(",") if m.strip()]
    for a in archs:
        if a not in release.ARCHS:
            raise CSBenchError(f"the release has no '{a}' models; valid: "
                               f"{', '.join(release.ARCHS)}")
    if args.ratios.strip() == "all":
        ratios = release.RATIOS
    else:
        try:
            ratios = [float(r) for r in args.ratios.split(",") if r.strip()]
        except ValueError:
            raise CSBenchError(f"--ratios: '{args.ratios}' is not a list of numbers") from None
        for r in ratios:
            release.checkpoint_path(archs[0] if archs else "ista-net", r)  # checks the ratio
    if not archs or not ratios:
        raise CSBenchError("nothing to fetch: give at least one method and one ratio")
    release.fetch(archs, ratios)
    r0 = next((r for r in ratios if release.has_own_phi(r)), None)
    if r0 is not None:
        print(f"run one with its own Phi: cs-bench run --methods {archs[0]} --param {archs[0]}"
              f".weights={release.weights_name(archs[0], r0)} --ratios {r0:g} --phi "
              f"{release.phi_file(r0)}")
    r1 = ratios[0]
    print(f"or with the harness Phi: cs-bench run --methods {archs[0]} --param {archs[0]}"
          f".weights={release.weights_name(archs[0], r1, own_phi=False)} --ratios {r1:g}")
    return 0


def cmd_import_official(args):
    import math

    from cs_bench.phifile import load_phi, read_matrix
    from cs_bench.sensing import check_ratio

    from .official import import_official

    check_name(args.name)
    if args.ratio is not None:
        if not math.isfinite(args.ratio):
            raise CSBenchError(f"ratio {args.ratio} is out of range; give a value in (0, 1]")
        check_ratio(args.ratio)
    load_phi(args.phi)  # sparse, complex, text ...: one line before the checkpoint is read
    read_matrix(args.qinit, "Qinit", "Qinit")
    path = import_official(args.checkpoint, args.phi, args.qinit, args.name, ratio=args.ratio,
                           overwrite=args.force)
    print(f"imported '{args.name}' -> {path}\nevaluate with: cs-bench run --methods ista-net "
          f"--param ista-net.weights={args.name} --phi {args.phi}  (the model measures with "
          f"its own Phi)")
    return 0


def cmd_export_official(args):
    from pathlib import Path

    from .official import export_official

    if Path(args.dir).exists() and not Path(args.dir).is_dir():
        raise CSBenchError(f"cannot write into {args.dir}: it is a file, not a folder; give a "
                           f"folder (created if missing)")
    for p in export_official(args.name, args.dir):
        print(p)
    return 0
