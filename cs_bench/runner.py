"""The benchmark runner: methods x ratios x images -> one long-format DataFrame.

Each (method, params, scope, weights, image, ratio, noise, Phi) result is cached as a row of
data in :class:`cs_bench.store.Store` (``cache_dir()/results.sqlite``; nothing is unpickled),
so a rerun only computes what changed and an interrupted run resumes. A failure, including a
reconstruction holding NaN or Inf, is recorded in the ``error`` column and never cached.

The cache is the main process's alone: it looks every result up before any work, sends only
the missing ones to the workers (joblib: this process, local processes, or a cluster's
workers through a surrounding ``parallel_config(backend="dask")``, see
:mod:`cs_bench.cluster`), and stores each result as it comes back.

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
           "psnr", "ssim", "seconds", "device", "cpu", "weights_id", "phi", "version", "code",
           "error"]


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
        "M": Phi.shape[0], "device": method.device, "cpu": cpu_name(),  # where it was timed
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


def _error_text(exc):
    """A failure as the ``error`` column holds it: a user-caused problem (CSBenchError, e.g.
    missing weights) in its own words, anything else with its type."""
    return str(exc) if isinstance(exc, CSBenchError) else f"{type(exc).__name__}: {exc}"


def _prepare(method, ref, ratio, noise_sigma, noise_seed, phi, padding, codes):
    """The row of one task before it is computed, and its run-cache key (None: not cacheable,
    or the row already failed). Runs in the main process: the cache is the client's.

    ``codes`` memoises :func:`method_code_id` per method class for one run.
    """
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
        cls = type(method)
        if cls not in codes:
            codes[cls] = method_code_id(cls)
        row["code"] = codes[cls]
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        row["error"] = _error_text(exc)
        return row, None
    if not row["code"]:  # no source to hash (python -c): never cached
        return row, None
    key = {"method_name": method.name, "scope": method.scope,
           "params_json": method.params_json(), "weights_id": row["weights_id"],
           "code": row["code"], "image_key": f"{ref.dataset}/{ref.name}/{ref.sha256}",
           "ratio": ratio, "noise_sigma": noise_sigma, "noise_seed": noise_seed,
           "phi_key": phi.key, "padding": padding, "version": __version__}
    return row, key


def _compute(i, row, method, ref, ratio, noise_sigma, noise_seed, phi, padding, main_pid=None):
    """Task ``i``: compute the prepared ``row`` (in a worker, local or on a cluster);
    ``(i, row)`` with the scores or the ``error``. Nothing here touches the run cache.

    A worker first checks it runs the code and the weights the main process keyed the result
    with (a cluster's workers may hold another cs-bench, another source or other weights).
    """
    if main_pid is not None and os.getpid() != main_pid:
        # a local worker process: SIGTERM sent to the whole process group is the main
        # process's to answer (it stops the workers itself); a worker dying on it would lose
        # its result silently
        try:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        except ValueError:  # not the main thread of the process
            pass
    row = dict(row)
    try:
        if isinstance(method, bytes):  # sent to a cluster by value
            from .cluster import load_method

            method = load_method(method)
        _check_worker(method, ratio, row)
        row.update(evaluate(method, ref, ratio, noise_sigma, noise_seed, phi, padding))
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # a method failing on one image: recorded, never cached
        row["error"] = _error_text(exc)
    return i, row


def _check_worker(method, ratio, row):
    """Refuse to compute a row whose cache key (made in the main process) does not describe
    what this process would run: another cs-bench version, method source or weights."""
    import cs_bench

    if cs_bench.__version__ != row["version"]:
        raise CSBenchError(f"this worker runs cs-bench {cs_bench.__version__}, the client "
                           f"{row['version']}: install the same version on every machine")
    code = method_code_id(type(method))
    if code and row.get("code") and code != row["code"]:
        raise CSBenchError(f"this worker's source of {method.name} differs from the client's: "
                           "install the same cs-bench (and plugin files) on every machine")
    wid = method.weights_id_for(ratio)
    if wid != row["weights_id"]:
        raise CSBenchError(f"this worker's weights for {method.name} at ratio {ratio:g} "
                           f"({wid}) differ from the client's ({row['weights_id']}): give the "
                           "workers the same weights (CS_BENCH_WEIGHTS on a shared folder)")


@dataclass(frozen=True)
class _Pixels:
    """An image loaded by the main process, shipped to a cluster's workers with its task (they
    need not see the data folders)."""

    dataset: str
    name: str
    sha256: str
    pixels: np.ndarray

    def load(self):
        return self.pixels


@dataclass(frozen=True)
class _LoadedPhi:
    """A user's Phi file read by the main process, shipped to a cluster's workers."""

    key: str
    path: str
    Phi: np.ndarray

    def matrix(self, ratio):
        return self.Phi


def _is_local(backend):
    """Whether a joblib backend runs tasks on this machine (loky, processes, threads, in
    process), as opposed to a cluster's (dask, ray, ...)."""
    return type(backend).__module__ == "joblib._parallel_backends"


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


def run(methods, dataset="skimage", ratios=(0.1, 0.25), noise=0.0, jobs=None, data_dir=None,
        scope=None, params=None, phi_path=None, phi_seed=0, noise_seed=0, padding="paper",
        images=None, cache=True, progress=True, cached_only=False):
    """Run every method on every image of ``dataset`` at every ratio; long-format DataFrame.

    ``cached_only``: compute nothing; return what the run cache holds, and a row whose
    ``error`` is :data:`NOT_CACHED` for each result it does not.

    ``methods``: names or already-built :class:`~cs_bench.method.Method` objects.
    ``params``: {method name: {param: value}}. ``noise``: sigma on the [0, 1] scale (or a
    list of sigmas). ``scope``: force "block" or "image" for every method.

    Parallelism is joblib's: ``jobs=None`` (the default) takes the backend and ``n_jobs`` of
    a surrounding ``joblib.parallel_config(...)``, else runs in this process; an integer
    ``jobs`` sets the number of workers of that backend (loky processes by default; -1: every
    core). On this machine the workers are capped at the cores and the tasks to compute. On a
    cluster's backend (``parallel_config(backend="dask")`` with a ``distributed.Client``, see
    :mod:`cs_bench.cluster`) the main process ships each task its image (and a user's Phi).

    The run cache is this process's: it looks up every result before any work, sends only
    what is missing to the workers, and stores each result as it comes back, so a rerun, on
    this machine alone or on a cluster, computes only what changed.
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
    if jobs is not None:
        worker_count(jobs, 1)  # jobs=0: refused before any work
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
    from joblib.parallel import get_active_backend
    from tqdm.auto import tqdm

    rows, keys, pending, codes = [None] * len(tasks), [None] * len(tasks), [], {}
    unsaved = []
    with tqdm(total=len(tasks), disable=not progress, unit="img", dynamic_ncols=True) as bar:
        def done(i, row):
            rows[i] = row
            bar.set_postfix_str(f"{row['method']} {row['image']} r={row['ratio']:g}")
            bar.update()

        # the cache is looked up here, before any worker starts: a rerun sends nothing out
        for i, (m, ref, r, s) in enumerate(tasks):
            row, keys[i] = _prepare(m, ref, r, s, noise_seed, phi, padding, codes)
            hit = store.get(keys[i]) if store is not None and keys[i] is not None else None
            if hit is not None:
                row.update(hit)
                done(i, row)
            elif row["error"] is None and cached_only:
                row["error"] = NOT_CACHED
                done(i, row)
            elif row["error"] is not None:
                done(i, row)
            else:
                pending.append((i, row))

        backend, config_jobs = get_active_backend()
        local = _is_local(backend)
        n_jobs = jobs if jobs is not None else config_jobs
        if local:
            n_jobs = worker_count(n_jobs if n_jobs is not None else 1, max(1, len(pending)))
        ship = _Shipper(local, phi)
        pid = os.getpid() if local else None
        if not local:
            from .cluster import by_value
        sent = {id(m): m if local else by_value(m) for m, *_ in tasks}

        def calls():
            for i, row in pending:
                m, ref, r, s = tasks[i]
                ref = ship.image(i, row, ref)
                if ref is not None:
                    yield delayed(_compute)(i, row, sent[id(m)], ref, r, s, noise_seed,
                                            ship.phi, padding, pid)

        gen = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(calls()) if pending else []
        for i, row in gen:
            if store is not None and keys[i] is not None and row["error"] is None:
                try:
                    store.put(keys[i], row)
                except Exception as exc:  # full disk, read-only cache: the result is kept
                    unsaved.append(_store_reason(exc))
            done(i, row)
        for i, row in ship.failed:  # an image the main process could not read
            done(i, row)
    df = pd.DataFrame(rows)
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = None
    df = df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]
    df = df.sort_values(["method", "scope", "ratio", "noise_sigma", "image"],
                        kind="stable").reset_index(drop=True)
    # rows computed but not cached (full disk): kept in the result, counted for the caller
    df.attrs["not_cached"] = len(unsaved)
    df.attrs["cache_error"] = unsaved[0] if unsaved else ""
    return df


class _Shipper:
    """What a task carries: on this machine the image reference (a worker reads the file);
    to a cluster the pixels and a user's Phi, read once here."""

    def __init__(self, local, phi):
        self.local, self.failed, self._pixels = local, [], {}
        self.phi = phi
        if not local and phi.path:
            self.phi = _LoadedPhi(phi.key, phi.path, phi.matrix(None))

    def image(self, i, row, ref):
        """The image task ``i`` carries; None (and the row failed) if it cannot be read."""
        if self.local:
            return ref
        if ref not in self._pixels:
            try:
                self._pixels[ref] = _Pixels(ref.dataset, ref.name, ref.sha256, ref.load())
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                self._pixels[ref] = _error_text(exc)
        got = self._pixels[ref]
        if isinstance(got, str):
            self.failed.append((i, {**row, "error": got}))
            return None
        return got


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


@lru_cache(maxsize=1)
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
