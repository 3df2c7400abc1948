"""The block sensing operator: Phi, the measurement count M and noisy measurements.

Phi for a ratio is the first M rows of one orthogonal N x N matrix (N = 1089 = 33 x 33):
the Q of a QR decomposition of a seeded standard-normal matrix, with signs fixed so that
diag(R) > 0 (which makes Q unique, hence the same on every platform up to rounding).
Rows are orthonormal (Phi Phi^T = I) and the matrices of different ratios are nested,
as with the ISTA-Net / ReconNet authors' MATLAB ``orth(randn(N, N))'``.

>>> Phi = make_phi(0.25)
>>> Phi.shape
(272, 1089)
>>> bool(abs(Phi @ Phi.T - np.eye(272)).max() < 1e-10)
True
"""

from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import CSBenchError

BLOCK = 33
N = BLOCK * BLOCK

#: M of the papers' ratios (ISTA-Net, ReconNet); other ratios round half up.
PAPER_M = {0.01: 10, 0.04: 43, 0.10: 109, 0.25: 272, 0.30: 327, 0.40: 436, 0.50: 545}


def check_ratio(ratio):
    """Return ratio as a float, or raise a one-line error if it is not in (0, 1]."""
    try:
        r = float(ratio)
    except (TypeError, ValueError):
        raise CSBenchError(f"ratio '{ratio}' is not a number; give a value in (0, 1]") from None
    if not np.isfinite(r) or r <= 0 or r > 1:
        raise CSBenchError(f"ratio {ratio} is out of range; give a value in (0, 1]")
    return r


def measurement_count(ratio, n=N):
    """Number of measurements M for a sampling ratio.

    >>> measurement_count(0.1), measurement_count(0.2), measurement_count(1.0)
    (109, 218, 1089)
    """
    r = check_ratio(ratio)
    if n == N:
        for key, m in PAPER_M.items():
            if abs(r - key) < 1e-9:
                return m
    return max(1, min(n, int(np.floor(r * n + 0.5))))


@lru_cache(maxsize=4)
def _orthogonal(seed, n):
    G = np.random.default_rng(seed).standard_normal((n, n))
    Q, R = np.linalg.qr(G)
    Q = Q * np.sign(np.diag(R))[None, :]  # sign fix: columns times sign(R_jj)
    Q = Q.T.copy()  # rows of an orthogonal matrix are orthonormal
    Q.setflags(write=False)
    return Q


def make_phi(ratio, seed=0, n=N):
    """The M x N Gaussian sensing matrix with orthonormal rows for ``ratio``."""
    m = measurement_count(ratio, n)
    return _orthogonal(int(seed), n)[:m]


def load_phi(path, n=N):
    """Load a user's Phi from ``.npy`` or ``.mat`` (key ``phi``), shape M x 1089."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            phi = np.load(path, allow_pickle=False)
        elif path.suffix.lower() == ".mat":
            from scipy.io import loadmat

            mat = loadmat(path)
            key = next((k for k in mat if k.lower() == "phi"), None)
            if key is None:
                raise CSBenchError(f"{path}: no variable 'phi' in the .mat file")
            phi = mat[key]
        else:
            raise CSBenchError(f"{path}: Phi must be a .npy or .mat file")
    except CSBenchError:
        raise
    except Exception as exc:  # unreadable file
        raise CSBenchError(f"{path}: cannot read Phi ({type(exc).__name__})") from None
    phi = np.asarray(phi, dtype=np.float64)
    if phi.ndim != 2 or phi.shape[1] != n or not 1 <= phi.shape[0] <= n:
        raise CSBenchError(f"{path}: Phi has shape {phi.shape}, expected M x {n} with 1 <= M <= {n}")
    if not np.all(np.isfinite(phi)):
        raise CSBenchError(f"{path}: Phi contains NaN or Inf")
    return phi


def measure(X, Phi, sigma=0.0, seed=0):
    """Measure blocks: Y = X Phi^T (+ sigma * Gaussian noise).

    X is n_blocks x N (rows are vectorised blocks), so each row of Y is y = Phi x.
    ``sigma`` is the noise standard deviation on the [0, 1] pixel scale.
    """
    Y = np.asarray(X, dtype=np.float64) @ Phi.T
    if sigma:
        Y = Y + sigma * np.random.default_rng(seed).standard_normal(Y.shape)
    return Y
