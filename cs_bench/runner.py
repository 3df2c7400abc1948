"""The benchmark runner: methods x ratios x images -> one long-format DataFrame.

Each (method, params, scope, weights, image, ratio, noise, Phi) result is cached as a row of
data in :class:`cs_bench.store.Store` (``cache_dir()/results.sqlite``; nothing is unpickled),
so a rerun only computes what changed and an interrupted run resumes. A failure, including a
reconstruction holding NaN or Inf, is recorded in the ``error`` column and never cached.

>>> df = run(["ista-wavelet"], "skimage", [0.25], images=["text"], cache=False, progress=False)
>>> [str(df.loc[0, "method"]), str(df.loc[0, "image"]), int(df.loc[0, "M"])]
['ista-wavelet', 'text', 272]
"""

import os
import platform
import signal
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .data import ImageRef, image_folder_refs, image_refs, sha256_file
from .errors import CSBenchError, DataError
from .metrics import psnr, ssim
from .problem import Problem
from .registry import get_method
from .phifile import load_phi
from .plugins import method_code_id
from .sensing import N, check_ratio, make_phi

COLUMNS = ["method", "params", "scope", "dataset", "image", "ratio", "M", "noise_sigma",
           "psnr", "ssim", "seconds", "device", "weights_id", "phi", "version", "code", "error"]


@dataclass(frozen=True)
class PhiSpec:
    """Which sensing matrix: the seeded Gaussian one, or a user's file."""

    seed: int = 0
    path: str = ""

    @property
    def key(self):
        return f"file:{sha256_file(self.path)[:16]}" if self.path else f"seed:{self.seed}"

    def matrix(self, ratio):
        if self.path:
            return _user_phi(self.path)
        return make_phi(ratio, self.seed)


@lru_cache(maxsize=2)
def _user_phi(path):
    return load_phi(path)


#: the smallest image side SSIM (scikit-image, 7 x 7 window) can score
MIN_SIDE = 7


class NonFiniteResult(CSBenchError):
    """A reconstruction holding NaN or Inf: the row fails, nothing is cached."""


def evaluate(method, ref, ratio, noise_sigma=0.0, noise_seed=0, phi=PhiSpec(), padding="paper"):
    """Measure one image, reconstruct it with ``method`` and score it: one result row."""
    img = ref.load()
    if min(img.shape) < MIN_SIDE:  # SSIM's 7 x 7 window: said before any reconstruction
        raise DataError(f"{ref.name}: {img.shape[0]} x {img.shape[1]} pixels; SSIM's 7 x 7 "
                        f"window needs images of at least {MIN_SIDE} pixels a side")
    Phi = phi.matrix(ratio)
    prob = Problem.from_image(img, ratio, Phi=Phi, noise_sigma=noise_sigma,
                              noise_seed=noise_seed, padding=padding, name=ref.name)
    if phi.path:
        prob.ratio = Phi.shape[0] / Phi.shape[1]
    t0 = time.perf_counter()
    rec = np.asarray(method.reconstruct(prob), dtype=np.float64)
    seconds = time.perf_counter() - t0
    if rec.shape != img.shape:
        raise RuntimeError(f"{method.name} returned shape {rec.shape}, expected {img.shape}")
    bad = int(np.count_nonzero(~np.isfinite(rec)))
    if bad:  # clipping in the metrics would turn NaN into a number: refused, never cached
        raise NonFiniteResult(f"{method.name} returned a reconstruction with NaN or Inf in "
                              f"{bad} of {rec.size} pixels (diverged: check its parameters, "
                              f"weights and Phi)")
    return {
        "psnr": psnr(img, rec), "ssim": ssim(img, rec), "seconds": seconds,
        "M": Phi.shape[0], "device": method.device,
    }


@lru_cache(maxsize=None)
def _local_sources(path):
    """``path`` and the modules of its own folder it imports (``from .x import``), transitively."""
    import ast

    seen, todo = set(), [Path(path)]
    while todo:
        p = todo.pop()
        if p in seen or not p.is_file():
            continue
        seen.add(p)
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [node.module] if node.module else [a.name for a in node.names]
                todo += [p.parent / (n.split(".")[0] + ".py") for n in names]
    return sorted(seen)


def code_id(module_name):
    """Hash of the source of a method's module, the modules of its folder it imports, and the
    harness core it relies on.

    Part of the cache key, so editing a solver invalidates its cached results (and only its).
    """
    import hashlib
    import importlib

    mod = importlib.import_module(module_name)
    core = Path(__file__).parent
    h = hashlib.sha256()
    files = _local_sources(mod.__file__) + [core / f for f in ("problem.py", "sensing.py",
                                                               "blocks.py", "method.py")]
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


NOT_CACHED = "not run: not in the run cache (cached-only)"


def _task(store, method, ref, ratio, noise_sigma, noise_seed, phi, padding, cached_only=False,
          main_pid=None):
    """One result row; looked up in, computed into and written to ``store`` (None: no cache).

    A row that was computed but could not be cached (full disk) is kept and marked with
    ``cache_error``; it is never turned into a failure.
    """
    if main_pid is not None and os.getpid() != main_pid:
        # a worker: SIGTERM sent to the whole process group is the main process's to answer
        # (it stops the workers itself); a worker dying on it would lose its result silently
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    row = {
        "method": method.name, "params": method.params_json(), "scope": method.scope,
        "dataset": ref.dataset, "image": ref.name, "ratio": ratio, "noise_sigma": noise_sigma,
        "weights_id": None, "phi": phi.key, "version": __version__,
        "device": method.device, "error": None,
    }
    try:
        # the weights used at this ratio, verified before every cache lookup: retrained or
        # tampered weights never return a result cached for other weights
        row["weights_id"] = method.weights_id_for(ratio)
        row["code"] = method_code_id(type(method))
        store = store if row["code"] else None  # no source to hash (python -c): never cached
        key = {"method_name": method.name, "scope": method.scope,
               "params_json": method.params_json(), "weights_id": row["weights_id"],
               "code": row["code"], "image_key": f"{ref.dataset}/{ref.name}/{ref.sha256}",
               "ratio": ratio, "noise_sigma": noise_sigma, "noise_seed": noise_seed,
               "phi_key": phi.key, "padding": padding, "version": __version__}
        hit = store.get(key) if store is not None else None
        if hit is not None:
            row.update(hit)
            return row
        if cached_only:
            row["error"] = NOT_CACHED
            return row
        value = evaluate(method, ref, ratio, noise_sigma, noise_seed, phi, padding)
        row.update(value)
        if store is not None:
            try:
                store.put(key, value)
            except Exception as exc:  # full disk, read-only cache: the result is kept
                row["cache_error"] = _store_reason(exc)
    except (KeyboardInterrupt, SystemExit):
        raise
    except CSBenchError as exc:  # a user-caused problem (e.g. missing weights): recorded
        row["error"] = str(exc)
    except Exception as exc:  # a method failing on one image: recorded, never cached
        row["error"] = f"{type(exc).__name__}: {exc}"
    return row


def _store_reason(exc):
    from .store import _reason, default_path

    return _reason(exc, default_path()) or type(exc).__name__


def resolve_images(dataset, data_dir=None, images=None):
    """The image refs of a dataset name or of a folder of images, optionally a subset."""
    if Path(str(dataset)).is_dir() and str(dataset).lower() not in ("set11", "t91", "set5",
                                                                     "set14", "bsd100", "skimage"):
        refs = image_folder_refs(dataset)
    else:
        refs = image_refs(dataset, data_dir)
    if images:
        names = {r.name: r for r in refs}
        missing = [n for n in images if n not in names]
        if missing:
            raise DataError(f"no image '{missing[0]}' in {dataset}; it has: {', '.join(names)}")
        refs = [names[n] for n in images]
    return refs


def run(methods, dataset="skimage", ratios=(0.1, 0.25), noise=0.0, jobs=1, data_dir=None,
        scope=None, params=None, phi_path=None, phi_seed=0, noise_seed=0, padding="paper",
        images=None, cache=True, progress=True, cached_only=False):
    """Run every method on every image of ``dataset`` at every ratio; long-format DataFrame.

    ``cached_only``: compute nothing; return what the run cache holds, and a row whose
    ``error`` is :data:`NOT_CACHED` for each result it does not.

    ``methods``: names or already-built :class:`~cs_bench.method.Method` objects.
    ``params``: {method name: {param: value}}. ``noise``: sigma on the [0, 1] scale (or a
    list of sigmas). ``scope``: force "block" or "image" for every method.
    """
    if not methods:
        raise CSBenchError("no methods given; see 'cs-bench list'")
    params = params or {}
    methods = _unique(methods)
    built = [m if not isinstance(m, str) else
             get_method(m, scope=scope, **params.get(m, {})) for m in methods]
    ratios = _unique(check_measurable(r) for r in ratios)
    if not ratios:
        raise CSBenchError("no ratios given")
    noises = _unique(float(s) for s in (noise if isinstance(noise, (list, tuple)) else [noise]))
    if any(s < 0 or not np.isfinite(s) for s in noises):
        raise CSBenchError("noise sigma must be a finite number >= 0")
    for what, seed in (("--phi-seed", phi_seed), ("--noise-seed", noise_seed)):
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise CSBenchError(f"{what} {seed} is not a seed: give an integer >= 0")
    phi = PhiSpec(seed=int(phi_seed), path=str(phi_path) if phi_path else "")
    if phi.path:
        Phi = phi.matrix(None)
        ratios = [Phi.shape[0] / Phi.shape[1]]
    refs = resolve_images(dataset, data_dir, images)

    store = None
    if cache:
        from .store import Store

        store = Store()
    tasks = [(m, ref, r, s) for m in built for r in ratios for s in noises for ref in refs]

    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    gen = Parallel(n_jobs=worker_count(jobs, len(tasks)), return_as="generator_unordered")(
        delayed(_task)(store, m, ref, r, s, noise_seed, phi, padding, cached_only, os.getpid())
        for m, ref, r, s in tasks
    )
    rows = []
    with tqdm(total=len(tasks), disable=not progress, unit="img", dynamic_ncols=True) as bar:
        for row in gen:
            rows.append(row)
            bar.set_postfix_str(f"{row['method']} {row['image']} r={row['ratio']:g}")
            bar.update()
    df = pd.DataFrame(rows)
    unsaved = df.pop("cache_error") if "cache_error" in df.columns else pd.Series(dtype=object)
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = None
    df = df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]
    df = df.sort_values(["method", "scope", "ratio", "noise_sigma", "image"],
                        kind="stable").reset_index(drop=True)
    # rows computed but not cached (full disk): kept in the result, counted for the caller
    df.attrs["not_cached"] = int(unsaved.notna().sum())
    df.attrs["cache_error"] = next((str(e) for e in unsaved if isinstance(e, str)), "")
    return df


def _unique(items):
    """``items`` without repeats, in their first order (a repeated name is one set of rows)."""
    out = []
    for x in items:
        if x not in out:
            out.append(x)
    return out


def check_measurable(ratio):
    """``ratio`` as a float in (0, 1] that gives at least one measurement per block."""
    r = check_ratio(ratio)
    if r * N < 0.5:
        raise CSBenchError(f"ratio {ratio} gives no measurement of a {N}-pixel block "
                           f"(ratio x {N} < 0.5); the smallest ratio is 1/{N} = {1 / N:.6f}")
    return r


def worker_count(jobs, n_tasks):
    """Workers to start: ``jobs`` (-1: every core, -2: all but one, ...) capped at the number
    of tasks and of cores, so a small run never starts idle processes."""
    cores = os.cpu_count() or 1
    if not isinstance(jobs, (int, np.integer)) or jobs == 0:
        raise CSBenchError(f"--jobs {jobs} means no workers: give a count >= 1, or -1 for every "
                           "core")
    n = jobs if jobs > 0 else max(1, cores + 1 + jobs)
    return max(1, min(n, cores, n_tasks))


def environment():
    """Where the numbers came from (for report headers)."""
    return {"machine": platform.machine(), "processor": cpu_name(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "cs_bench": __version__}


def cpu_name():
    """The CPU model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


__all__ = ["run", "evaluate", "PhiSpec", "resolve_images", "environment", "ImageRef"]
