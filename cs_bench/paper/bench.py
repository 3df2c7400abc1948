"""``make bench``: how fast every method is, how cost grows with pixels, and how close the
learned networks come to the machine's peak. Writes ``results/bench.md`` and ``bench.csv``.

* seconds per 256x256 image for every registered method: median of ``repeats`` runs after
  one warm-up, reconstruction only (the learned networks run with freshly initialised
  weights of the real architecture: speed does not depend on the weights' values);
* learned methods batched: images per second for all nine 256x256 Set11 images in one call;
* growth: one image of 256, 512 and 1024 pixels a side, tiled from Set11 images;
* ISTA-Net training throughput in blocks/s, float32 and bfloat16 autocast, side by side;
* the floor: FLOPs per block of ISTA-Net, FISTA-Net and ReconNet counted by
  ``torch.utils.flop_counter``, the measured peak of a large float32 matrix product, the
  fraction of peak each network reaches, and the largest cost in a torch profile.

All ratios between methods come from one run on one machine; absolute figures carry the
device name in the header.
"""

import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import published as paper
from ..export import atomic_write_text, write_csv
from ..problem import Problem

SLOW_SECONDS = 20.0  # above this per 256x256 image: one timed run, growth skipped


def _images(dataset, data_dir):
    """Nine 256x256 test images (Set11 if available, else tiles of scikit-image's)."""
    from ..data import image_refs

    try:
        refs = [r for r in image_refs(dataset, data_dir) if r.name not in ("fingerprint",
                                                                           "flinstones")]
        imgs = [r.load() for r in refs]
        imgs = [i for i in imgs if i.shape == (256, 256)]
        if imgs:
            return imgs, dataset
    except Exception:
        pass
    import skimage.data

    cam = skimage.data.camera() / 255.0
    return [cam[i:i + 256, j:j + 256] for i in (0, 128, 256) for j in (0, 128, 256)], "skimage"


def tiled(imgs, size):
    """A size x size image tiled from 256x256 images (deterministic order)."""
    k = size // 256
    rows = [np.hstack([imgs[(r * k + c) % len(imgs)] for c in range(k)]) for r in range(k)]
    return np.vstack(rows)


def _time(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def _method(name, ratio, device):
    """A method ready to time; learned ones with fresh weights of the real architecture."""
    from ..registry import get_method, method_class

    cls = method_class(name)
    if cls.family != "learned":
        return get_method(name)
    return _UntrainedLearned(name, ratio, device)


class _UntrainedLearned:
    """Times a learned architecture with freshly initialised weights (bench only)."""

    family = "learned"

    def __init__(self, name, ratio, device):
        import torch

        from ..learned.nets import BlockOperator
        from ..learned.spec import ARCH_OF, build
        from ..sensing import make_phi

        from ..learned.runtime import default_batch

        torch.manual_seed(0)
        self.name, self.device = name, device
        self.batch = default_batch(ARCH_OF[name], device)  # as the method runs it
        Phi = torch.tensor(make_phi(ratio), dtype=torch.float32)
        self.net = build(ARCH_OF[name], Phi.shape[0]).to(device).eval()
        self.op = BlockOperator(Phi, Phi.T.contiguous()).to(device)

    def blocks(self, y):
        import torch

        y = torch.as_tensor(y, dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            out = torch.cat([self.net(y[i:i + self.batch], self.op).x
                             for i in range(0, y.shape[0], self.batch)])
            if self.device != "cpu":
                torch.cuda.synchronize()
            return out.cpu().numpy()

    def reconstruct(self, problem):
        return problem.to_image(self.blocks(problem.y))


def per_image(names, imgs, ratio, repeats, device, log):
    rows = []
    for name in names:
        m = _method(name, ratio, device)
        prob = Problem.from_image(imgs[0], ratio)
        t0 = time.perf_counter()
        m.reconstruct(prob)
        first = time.perf_counter() - t0
        reps = 1 if first > SLOW_SECONDS else repeats
        med, times = _time(lambda: m.reconstruct(prob), reps) if first <= SLOW_SECONDS else \
            (first, [first])
        row = {"section": "per_image", "method": name, "family": m.family, "device": device,
               "size": 256, "seconds": med, "runs": len(times)}
        if m.family == "learned":
            Y = np.vstack([Problem.from_image(i, ratio).y for i in imgs])
            bmed, _ = _time(lambda: m.blocks(Y), repeats)
            row["images_per_s_batched"] = len(imgs) / bmed
        rows.append(row)
        log(f"  {name:<18} {med:9.4f} s/image ({device})")
    return rows


def growth(names, imgs, ratio, per_image_rows, device, log):
    rows = []
    base = {r["method"]: r["seconds"] for r in per_image_rows}
    for name in names:
        m = _method(name, ratio, device)
        for size in (512, 1024):
            if base.get(name, 0) > SLOW_SECONDS:  # keeps make bench bounded
                est = base[name] * (size / 256) ** 2
                rows.append({"section": "growth", "method": name, "device": device, "size": size,
                             "seconds": float("nan"), "note": f"skipped (~{est:.0f} s if linear)"})
                continue
            prob = Problem.from_image(tiled(imgs, size), ratio)
            t0 = time.perf_counter()
            m.reconstruct(prob)
            sec = time.perf_counter() - t0
            rows.append({"section": "growth", "method": name, "device": device, "size": size,
                         "seconds": sec})
            log(f"  {name:<18} {size}x{size}: {sec:.3f} s")
    return rows


def peak_gflops(device="cpu", n=2048, repeats=5):
    """Measured float32 matrix-product rate (GFLOP/s): the machine's practical peak."""
    import torch

    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)

    def mm():
        a @ b
        if device != "cpu":
            torch.cuda.synchronize()

    med, _ = _time(mm, repeats)
    return 2 * n**3 / med / 1e9


def flops_per_block(name, ratio=0.25):
    """FLOPs of one block's forward pass, counted by torch's FlopCounterMode."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    m = _UntrainedLearned(name, ratio, "cpu")
    y = torch.zeros(64, m.op.M)
    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        m.net(y, m.op)
    return fc.get_total_flops() / 64


#: the ISTA-Net training-step variants :func:`train_throughput` times side by side: label ->
#: (precision, torch.compile, where the symmetry term is taken, batch as a fraction of 64)
TRAIN_VARIANTS = {
    "fp32": ("fp32", False, "block", 1),
    "bf16": ("bf16", False, "block", 1),
    "fp32, torch.compile": ("fp32", True, "block", 1),
    "fp32, symmetry on the phase input": ("fp32", False, "phase_input", 1),
    "fp32, batch 32": ("fp32", False, "block", 0.5),
}


def train_throughput(ratio=0.25, steps=20, batch=64, rounds=4, variants=None, log=print):
    """ISTA-Net (Np 9, Nf 32, loss L, gamma 0.01) training blocks/s of each step variant of
    :data:`TRAIN_VARIANTS` (``variants``: a subset of its labels; bf16 only where the CPU
    computes it natively).

    Side by side: one warm-up step each (torch.compile compiles there), then ``rounds`` rounds
    in which every variant runs ``steps // rounds`` steps in turn, so a load that comes and
    goes on a shared machine falls on all of them alike.
    """
    import torch

    from ..learned.losses import loss_terms
    from ..learned.nets import BlockOperator
    from ..learned.spec import build
    from ..learned.runtime import autocast, bf16_native
    from ..sensing import make_phi

    Phi = torch.tensor(make_phi(ratio), dtype=torch.float32)
    op = BlockOperator(Phi, Phi.T.contiguous())
    X = torch.rand(batch * 4, 1089)
    labels = [v for v in (variants or TRAIN_VARIANTS)
              if TRAIN_VARIANTS[v][0] != "bf16" or bf16_native("cpu")]

    def make(label):
        prec, comp, sym, frac = TRAIN_VARIANTS[label]
        b = max(1, int(batch * frac))
        torch.manual_seed(0)
        net = build("ista-net", Phi.shape[0])
        fwd = torch.compile(net) if comp else net
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)

        def step(i):
            x = X[(i % 4) * b:(i % 4 + 1) * b]
            with autocast(prec, "cpu"):
                o = fwd(x @ Phi.T, op, sym=sym, s=x)
                loss = loss_terms(o, x, "L", 0.01)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()

        step(0)
        return step, b

    runners = {}
    for label in labels:
        try:
            runners[label] = make(label)
        except Exception as exc:  # noqa: BLE001 - torch.compile without a C compiler
            log(f"  ISTA-Net training {label}: not timed ({type(exc).__name__})")
    seconds, blocks = dict.fromkeys(runners, 0.0), dict.fromkeys(runners, 0)
    per = max(1, steps // rounds)
    for _ in range(rounds):
        for label, (step, b) in runners.items():
            t0 = time.perf_counter()
            for i in range(per):
                step(i + 1)
            seconds[label] += time.perf_counter() - t0
            blocks[label] += per * b
    out = {k: blocks[k] / seconds[k] for k in runners}
    for k, v in out.items():
        log(f"  ISTA-Net training {k}: {v:.0f} blocks/s")
    return out


def profile_top(name="ista-net", ratio=0.25, n_blocks=64 * 9):
    """The op with the largest self CPU time in one ISTA-Net inference (torch profiler)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    m = _UntrainedLearned(name, ratio, "cpu")
    y = torch.rand(n_blocks, m.op.M)
    with torch.inference_mode():
        m.net(y, m.op)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            m.net(y, m.op)
    ev = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in ev)
    return [(e.key, e.self_cpu_time_total / total) for e in ev[:3]]


def versions():
    import importlib.metadata as md

    out = {}
    for pkg in ("numpy", "scipy", "torch", "scikit-image", "PyWavelets", "bm3d"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def run_bench(out="results", methods=None, repeats=3, ratio=0.25, dataset="set11",
              data_dir=None, log=print):
    import torch

    from ..registry import list_methods
    from ..runner import cpu_name

    names = methods or list_methods()
    imgs, src = _images(dataset, data_dir)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    head = {"cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), **versions(), "images": src, "ratio": ratio,
            "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")}
    log(f"bench on {head['cpu']} ({head['cores']} cores, torch threads {head['torch_threads']})")
    rows = []
    peak = {}
    for dev in devices:
        peak[dev] = peak_gflops(dev)
        log(f"  peak fp32 matmul on {dev}: {peak[dev]:.0f} GFLOP/s")
        dnames = names if dev == "cpu" else [n for n in names if _is_learned(n)]
        pi = per_image(dnames, imgs, ratio, repeats, dev, log)
        rows += pi + growth(dnames, imgs, ratio, pi, dev, log)
    thr = train_throughput(log=log)
    floor = []
    for name in ("ista-net", "fista-net", "reconnet"):
        if name not in names:
            continue
        f = flops_per_block(name, ratio)
        for dev in devices:
            r = next(r for r in rows if r["section"] == "per_image" and r["method"] == name
                     and r["device"] == dev)
            blocks_per_s = r["images_per_s_batched"] * 64  # 64 blocks per 256x256 image
            floor.append({"method": name, "device": dev, "mflops_per_block": f / 1e6,
                          "blocks_per_s": blocks_per_s,
                          "fraction_of_peak": f * blocks_per_s / (peak[dev] * 1e9)})
    top = profile_top(ratio=ratio) if "ista-net" in names else []
    df = pd.DataFrame(rows)
    write_csv(df, Path(out) / "bench.csv")
    atomic_write_text(Path(out) / "bench.md", report(df, head, peak, thr, floor, top))
    log(f"written {out}/bench.md")
    return df


def _is_learned(name):
    from ..registry import method_class

    return method_class(name).family == "learned"


def report(df, head, peak, thr, floor, top):
    lines = ["# Speed benchmark", "",
             f"Device: {head['cpu']}, {head['cores']} cores, torch threads "
             f"{head['torch_threads']}; Python {head['python']}; "
             + ", ".join(f"{k} {head[k]}" for k in ("numpy", "scipy", "torch", "scikit-image",
                                                    "PyWavelets", "bm3d"))
             + f". Load average at start: {head['load']:.1f} (on {head['cores']} cores: above "
             "that, other processes shared the CPU and absolute times are inflated).",
             f"Images: nine 256x256 {head['images']} images, ratio {head['ratio']}. "
             "Seconds are reconstruction only, median of repeated runs after a warm-up "
             f"(one run for methods slower than {SLOW_SECONDS:g} s). Learned networks are timed "
             "with freshly initialised weights of the real architecture.", "",
             "## Seconds per 256x256 image", ""]
    pi = df[df.section == "per_image"].copy()
    t = pd.DataFrame({
        "method": pi.method, "device": pi.device, "s/image": pi.seconds.map(lambda v: f"{v:.4g}"),
        "images/s batched": pi.get("images_per_s_batched", pd.Series(dtype=float)).map(
            lambda v: "" if pd.isna(v) else f"{v:.1f}"),
        "paper s/image": pi.method.map(_paper_seconds),
    })
    lines += [t.to_markdown(index=False), "",
              "The paper's times (Table 2) are its own hardware's (MATLAB on a CPU for the "
              "classical methods, a GPU for the networks), quoted for reference only.", "",
              "## Growth with image size (seconds for one image)", ""]
    g = pd.concat([pi.assign(note=""), df[df.section == "growth"]], ignore_index=True)
    g["text"] = g.apply(lambda r: r.note if isinstance(r.get("note"), str) and r.note
                        else f"{r.seconds:.4g}", axis=1)
    gp = g.pivot_table(index=["method", "device"], columns="size", values="text", aggfunc="first")
    gp.columns = [f"{c}x{c}" for c in gp.columns]
    lines += [gp.reset_index().to_markdown(index=False), "",
              "## ISTA-Net training throughput (CPU, batch 64, Np 9, Nf 32, loss L)", ""]
    ref = thr.get("fp32")
    for k, v in thr.items():
        rel = f", {v / ref:.2f}x fp32" if ref and k != "fp32" else ""
        lines.append(f"- {k}: {v:.0f} blocks/s ({88912 / v / 60:.1f} min per 88,912-block "
                     f"epoch{rel})")
    lines += ["", "Timed side by side in one process, the variants taking turns (default torch "
              "threads). The symmetry term on the phase input is the authors' code's form "
              "(reusing F(r)); the paper's, on the training block, is the default until the "
              "training study shows the two train alike. Batch 32 changes the optimisation "
              "as well as the speed."]
    lines += ["", "## The floor", ""]
    for dev, p in peak.items():
        lines.append(f"Measured peak (2048x2048 float32 matmul) on {dev}: {p:.0f} GFLOP/s.")
    if floor:
        f = pd.DataFrame(floor)
        lines += ["", f.to_markdown(index=False, floatfmt=".4g"), "",
                  "FLOPs per block are counted by torch.utils.flop_counter (multiply-add = 2 "
                  "FLOPs) for one forward pass; blocks/s comes from the batched run above."]
    if top:
        lines += ["", "Largest costs in one ISTA-Net inference (torch profiler, self CPU time): "
                  + "; ".join(f"{k} {v:.0%}" for k, v in top) + "."]
    return "\n".join(lines) + "\n"


def _paper_seconds(method):
    from .labels import LABELS

    p = paper.TABLE2.get(LABELS.get(method, ""), None)
    return f"{p['seconds']} ({p['device']})" if p else ""


__all__ = ["run_bench", "peak_gflops", "flops_per_block", "train_throughput"]
