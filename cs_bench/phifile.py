"""Reading a user's matrix file (Phi, Qinit) with every bad case answered in one line.

A matrix file is ``.npy`` (never unpickled) or ``.mat`` (MATLAB v5; a named variable). What
is refused, each with its reason: an ``.npz`` or other archive named ``.npy``; string,
structured or object arrays; sparse matrices, structs, cells and char arrays in ``.mat``;
complex values (the imaginary part would be lost); NaN or Inf; the wrong shape; and a Phi so
large that measuring a block overflows.

The harness's Phi (:func:`cs_bench.sensing.make_phi`) stays in ``sensing.py``; this module
sits apart so that checking files does not change the ``code`` hash of every method.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "phi.npy"
>>> np.save(p, np.eye(1089)[:10] + 0j)
>>> try:
...     load_phi(p)
... except CSBenchError as e:
...     print(str(e).split(": ", 1)[1])
Phi is complex (complex128); give a real matrix
"""

from pathlib import Path

import numpy as np

from .errors import CSBenchError

N = 1089


def read_matrix(path, key, what):
    """The 2-D float64 array stored in ``path`` (``.npy``, or ``.mat`` variable ``key``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".mat"):
        raise CSBenchError(f"{path}: {what} must be a .npy or .mat file")
    try:
        if suffix == ".npy":
            with open(path, "rb") as f:
                magic = f.read(6)
            if magic.startswith(b"PK"):
                raise CSBenchError(f"{path}: an .npz archive named .npy; save one array with "
                                   f"numpy.save")
            arr = np.load(path, allow_pickle=False)
        else:
            from scipy.io import loadmat

            mat = loadmat(path)
            name = next((k for k in mat if k.lower() == key.lower()), None)
            if name is None:
                raise CSBenchError(f"{path}: no variable '{key}' in the .mat file")
            arr = mat[name]
    except CSBenchError:
        raise
    except Exception as exc:  # unreadable, truncated, pickled object arrays, not a file
        raise CSBenchError(f"{path}: cannot read {what} ({type(exc).__name__})") from None
    return _as_real_matrix(arr, path, what)


def _as_real_matrix(arr, path, what):
    import scipy.sparse

    if scipy.sparse.issparse(arr):
        raise CSBenchError(f"{path}: {what} is a sparse matrix; save it as a full matrix "
                           f"(MATLAB: full({what.lower()}))")
    arr = np.asarray(arr)
    kind = arr.dtype.kind
    if arr.dtype.names is not None:
        raise CSBenchError(f"{path}: {what} is a struct / structured array; give a numeric matrix")
    if kind == "O":
        raise CSBenchError(f"{path}: {what} is a cell or object array; give a numeric matrix")
    if kind in "USa":
        raise CSBenchError(f"{path}: {what} holds text, not numbers; give a numeric matrix")
    if kind == "c":
        raise CSBenchError(f"{path}: {what} is complex ({arr.dtype}); give a real matrix")
    if kind not in "biuf":
        raise CSBenchError(f"{path}: {what} has dtype {arr.dtype}; give a numeric matrix")
    return arr.astype(np.float64)


def load_phi(path, n=N):
    """A user's Phi, M x 1089 with 1 <= M <= 1089, finite, measurable without overflow."""
    phi = read_matrix(path, "phi", "Phi")
    if phi.ndim != 2 or phi.shape[1] != n or not 1 <= phi.shape[0] <= n:
        raise CSBenchError(f"{path}: Phi has shape {phi.shape}, expected M x {n} with "
                           f"1 <= M <= {n}")
    if not np.all(np.isfinite(phi)):
        raise CSBenchError(f"{path}: Phi contains NaN or Inf")
    with np.errstate(over="ignore", invalid="ignore"):
        # a block of pixels in [0, 1] measures to at most the row sums of |Phi|; methods
        # also use Phi Phi^T (Gram, step sizes): both must stay finite
        ok = np.isfinite(np.abs(phi).sum(axis=1)).all() and np.isfinite(phi @ phi.T).all()
    if not ok or not np.any(phi):
        raise CSBenchError(f"{path}: Phi's entries are too large (max abs(Phi) = "
                           f"{np.abs(phi).max():.3g}): measurements would overflow; scale it"
                           if np.any(phi) else f"{path}: Phi is all zeros")
    return phi
