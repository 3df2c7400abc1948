"""The weights format, where weights live, and how a name is found.

Format: one ``NAME.safetensors`` file per model, self-contained.

* tensors: the network's state dict under ``net.`` (float32); ``Qinit`` (N x M, float32;
  ISTA-Net / FISTA-Net) solved once from the training blocks (Eq. 11-12); ``Phi``
  (M x N, float64) **only** when the model was trained with a Phi that is not the
  harness's (imported official checkpoints, a user's Phi). Harness-Phi models store the
  Phi seed instead (``make_phi(ratio, seed)`` is exact and nested across ratios): that
  keeps a 9-phase ISTA-Net at ratio 0.25 at about 2 MB.
* metadata: the safetensors header's ``__metadata__["cs_bench"]`` holds a JSON object
  (method, arch, every hyperparameter, ratio, M, phi, loss, sym_input, epochs, training
  blocks and recipe, device, precision, wall seconds, final train loss, validation
  PSNR, torch version, git commit, init_from ...). Keeping it inside the file makes the
  file's sha256 cover everything, and ``weights list`` reads only the header.

Lookup of a name, first hit wins:

1. a path to a ``.safetensors`` file (``weights=/path/to/file.safetensors``);
2. the package folder ``cs_bench/learned/weights/`` (shipped weights);
3. the user folder: ``$CS_BENCH_WEIGHTS`` if set, else ``cache_dir()/weights``
   (trained or imported weights land there).

Each folder has an ``index.json`` with every file's sha256. A shipped file must be in the
package index and match it; a user file that is in its index must match it (a user file
copied in by hand, not in the index, is loaded and listed as "unindexed"). Tensors are read
with safetensors only: nothing is ever unpickled.

Default names are the model zoo's (:mod:`cs_bench.paper.zoo`, tier 1):

>>> default_name("ista-net", 0.25, phases=9, nf=32)
'ista-net_r0.25_np9_nf32'
>>> default_name("reconnet", 0.04)
'reconnet_r0.04'
"""

import contextlib
import json
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from cs_bench.config import cache_dir
from cs_bench.errors import WeightsError
from cs_bench.files import atomic_write, sha256

from .spec import ARCH_OF, UNROLLED

FORMAT = "cs-bench-weights"
FORMAT_VERSION = 1
INDEX = "index.json"
SUFFIX = ".safetensors"


def package_dir():
    """The shipped weights folder inside the installed package."""
    return Path(__file__).resolve().parent / "weights"


def user_dir():
    """``$CS_BENCH_WEIGHTS`` or ``cache_dir()/weights`` (created on demand)."""
    env = os.environ.get("CS_BENCH_WEIGHTS")
    return Path(env).expanduser() if env else cache_dir() / "weights"


def default_name(method, ratio, phases=None, nf=None):
    """The weights name the harness looks for when ``weights`` is not given
    (``phases`` / ``nf`` None mean 9 / 32)."""
    from .spec import weights_name

    return weights_name(method, ratio, phases, nf)


def check_name(name):
    bad = set(name) & set('/\\:*?"<>| ')
    if not name or name.startswith(".") or bad:
        raise WeightsError(f"'{name}' is not a valid weights name (letters, digits, '-', '_', '.')")
    return name


# -- files -----------------------------------------------------------------------------
def save(path, tensors, meta):
    """Write ``tensors`` (name -> torch tensor) and ``meta`` (JSON-able) atomically.

    Returns the file's sha256.
    """
    from safetensors.torch import save_file

    meta = {**meta, "format": FORMAT, "format_version": FORMAT_VERSION}
    header = {"cs_bench": json.dumps(meta, sort_keys=True, default=_json_default)}
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header))
    return sha256(path)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_meta(path):
    """The metadata of a weights file (reads only the header)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        meta = json.loads(header["cs_bench"])
    except Exception as exc:  # noqa: BLE001 - any failure of the reader is a damaged file
        raise WeightsError(f"{path}: not a cs-bench weights file ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:120] if str(exc) else ''})") from None
    if meta.get("format") != FORMAT:
        raise WeightsError(f"{path}: not a cs-bench weights file (format {meta.get('format')!r})")
    return meta


def read_tensors(path):
    """All tensors of a weights file (safetensors; never unpickles)."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 - any failure of the reader is a damaged file
        raise WeightsError(f"{path}: cannot read the tensors ({type(exc).__name__}); "
                           f"the file is damaged: delete it and train or import it again") from None


# -- index -----------------------------------------------------------------------------
def read_index(folder):
    p = Path(folder) / INDEX
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text())
        return dict(data.get("files", {}))
    except (OSError, ValueError, AttributeError):
        raise WeightsError(f"{p}: the weights index is not valid JSON; restore it from a copy, "
                           f"or delete it (user folder) and train or import the weights again "
                           f"(files not in an index load unchecked)") from None


def write_index(folder, files):
    text = json.dumps({"format": FORMAT, "files": dict(sorted(files.items()))}, indent=1) + "\n"
    atomic_write(Path(folder) / INDEX, lambda tmp: Path(tmp).write_text(text))


@contextlib.contextmanager
def _index_lock(folder):
    """Serialise index updates of one folder across processes (two ``train-zoo`` runs
    finishing at once must not lose an entry); a no-op where ``fcntl`` is missing."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with open(Path(folder) / ".index.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def register(path, folder=None):
    """Record ``path`` (a weights file inside ``folder``) in ``folder``'s index."""
    folder = Path(folder) if folder else Path(path).parent
    digest = sha256(path)
    with _index_lock(folder):
        files = read_index(folder)
        files[Path(path).name] = {"sha256": digest, "added": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_index(folder, files)


def install(tensors, meta, name, folder=None, overwrite=True):
    """Save weights as ``name`` in the user folder (or ``folder``) and index them."""
    check_name(name)
    folder = Path(folder) if folder else user_dir()
    path = folder / (name + SUFFIX)
    if path.exists() and not overwrite:
        raise WeightsError(f"weights '{name}' already exist in {folder}; pick another --name or "
                           f"pass --force to replace them")
    if (package_dir() / (name + SUFFIX)).exists() and folder.resolve() != package_dir():
        raise WeightsError(f"'{name}' is the name of shipped weights; pick another --name")
    save(path, tensors, {**meta, "name": name})
    register(path, folder)
    return path


# -- lookup ----------------------------------------------------------------------------
@dataclass
class Entry:
    """One weights file found by :func:`find` or :func:`available`."""

    name: str
    path: Path
    where: str  # "package", "user" or "path"
    sha256: str = ""
    indexed: bool = True

    @property
    def short_id(self):
        return self.sha256[:16]

    def meta(self):
        return read_meta(self.path)


def _verify(path, folder, where, strict):
    index = read_index(folder)
    rec = index.get(path.name)
    digest = sha256(path)
    if rec is None:
        if strict:
            raise WeightsError(f"{path}: not listed in {folder / INDEX}; the shipped weights are "
                               f"incomplete or were modified: reinstall cs-bench")
        return digest, False
    if rec.get("sha256") != digest:
        raise WeightsError(f"{path}: sha256 mismatch with {folder / INDEX} (expected "
                           f"{str(rec.get('sha256'))[:12]}..., got {digest[:12]}...): the file is "
                           f"damaged or was modified; delete it and train or import it again")
    return digest, True


def find(name, hint="", method=None, phases=None, nf=None):
    """The :class:`Entry` for a weights name or path; one-line WeightsError if absent.

    ``method`` (with the ``phases`` / ``nf`` asked for): the error names that method's own
    weights and ratios (:func:`missing_for_method`), not every file of every method."""
    name = str(name)
    if name.endswith(SUFFIX) or os.sep in name:
        p = Path(name).expanduser()
        if not p.is_file():
            raise WeightsError(f"weights file {p} does not exist")
        return Entry(p.stem, p, "path", sha256(p), False)
    check_name(name)
    for where, folder, strict in (("package", package_dir(), True), ("user", user_dir(), False)):
        p = folder / (name + SUFFIX)
        if p.is_file():
            digest, indexed = _verify(p, folder, where, strict)
            return Entry(name, p, where, digest, indexed)
        if name + SUFFIX in read_index(folder) and where == "user":
            raise WeightsError(f"weights '{name}' are listed in {folder / INDEX} but the file "
                               f"{p} is missing; train or import them again")
    if method:
        msg = f"no weights named '{name}'; " + missing_for_method(method, phases, nf)
    else:
        have = [e.name for e in available()]
        listing = ", ".join(have) if have else "none"
        msg = (f"no weights named '{name}' (searched {package_dir()} and {user_dir()}); "
               f"available: {listing}")
    if hint:
        msg += f"; train them with: {hint}"
    raise WeightsError(msg)


def available():
    """Every weights file in the package and user folders (package first, sorted)."""
    out, seen = [], set()
    for where, folder in (("package", package_dir()), ("user", user_dir())):
        if not folder.is_dir():
            continue
        index = read_index(folder)
        for p in sorted(folder.glob("*" + SUFFIX)):
            if p.stem in seen:
                continue
            seen.add(p.stem)
            out.append(Entry(p.stem, p, where, "", p.name in index))
    return out


@lru_cache(maxsize=512)
def _meta_cached(path, mtime_ns, size):
    try:
        return read_meta(path)
    except WeightsError:
        return None


def own_weights(method):
    """[(name, ratio)] of the available weights files of ``method`` (from their metadata;
    damaged files left out)."""
    out = []
    for e in available():
        try:
            st = e.path.stat()
        except OSError:
            continue
        meta = _meta_cached(str(e.path), st.st_mtime_ns, st.st_size)
        if meta and meta.get("method") == method and meta.get("ratio") is not None:
            out.append((e.name, float(meta["ratio"])))
    return out


def missing_for_method(method, phases=None, nf=None):
    """What ``method`` has instead, in words: the ratios of its weights with the settings
    asked for (``phases`` / ``nf``; None: 9 / 32), else those of its default weights.

    >>> "has no weights yet" in missing_for_method("no-such-method")
    True
    """
    own = own_weights(method)
    if not own:
        return f"{method} has no weights yet (cs-bench info {method})"

    def ratios(pairs):
        return ", ".join(f"{r:g}" for r in sorted({r for _, r in pairs}))

    same = [(n, r) for n, r in own if n == default_name(method, r, phases, nf)]
    if ARCH_OF.get(method) in UNROLLED:
        settings = f" with Np={phases or 9}, Nf={nf or 32}"
    else:
        settings = ""
    every = f"every {method} weights file: cs-bench info {method}"
    if same:
        return f"{method} has weights{settings} at ratios {ratios(same)} ({every})"
    defaults = [(n, r) for n, r in own if n == default_name(method, r)]
    text = f"{method} has no weights{settings}; "
    if defaults:
        return text + f"its default weights are at ratios {ratios(defaults)} ({every})"
    return text + f"its weights are at ratios {ratios(own)} ({every})"


def read_metadata(name):
    """The metadata of the weights ``name`` (found as :func:`find` does)."""
    return find(name).meta()


def train_hint(method, ratio, phases=None, nf=None):
    """The command that trains the default weights of a method at a ratio."""
    cmd = f"cs-bench train {method} --ratio {float(ratio):g}"
    if ARCH_OF.get(method) in UNROLLED:
        if phases not in (None, 9):
            cmd += f" --phases {phases}"
        if nf not in (None, 32):
            cmd += f" --nf {nf}"
    return cmd
