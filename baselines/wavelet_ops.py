"""Orthonormal wavelet transforms W for ISTA / FISTA: on 33 x 33 blocks and on whole images.

Block scope. pywavelets has no orthonormal transform for odd lengths such as 33 (its
'periodization' mode repeats the last sample and returns 17 + 17 = 34 coefficients), so
:func:`block_level_matrices` builds each analysis level on length n as an n x n orthogonal
matrix from pywavelets' own filters:

* lowpass rows: the ceil(n/2) periodized scaling atoms, made orthonormal by their polar
  factor (Loewdin orthonormalisation: the orthonormal rows nearest to them, same span);
  then the atoms touching the first or last sample are turned, by a rotation in one plane,
  so that the span contains the constant block's coefficients: a flat block has no detail
  coefficients at any level, and thresholding never darkens it;
* highpass rows: the periodized wavelet atoms projected onto the orthogonal complement of
  the lowpass span; for odd n one of the ceil(n/2) is redundant there, and the one whose
  removal leaves the best-conditioned set is dropped; the rest are made orthonormal by
  their polar factor.

Interior atoms are pywavelets' own, unchanged; only atoms touching the block's border are
altered. With 'haar' this is exactly the Haar transform with the odd last sample passed to
the lowpass band. Levels are applied Mallat style to the lowpass square (33 -> 17 -> 9 -> 5
-> 3 -> 2), so the 2-D block transform ``BlockWavelet(...)`` is an orthogonal 1089 x 1089
matrix W (W W^T = W^T W = I), applied to all blocks at once as batched 33 x 33 products.

Why the constant matters: without that rotation (periodized atoms, polar factor only) the
block mean leaks into thresholded coefficients; block FISTA (3 levels, tau 0.01, 200
iterations) on 5 T91 crops then lost 7-8 dB with 'db2' and 2.3-2.7 dB with 'db4' at
ratios 0.1 and 0.25. With it, 'db2', 'db4' and 'haar' are within 0.3 dB of each other.

Image scope: :class:`ImageWavelet` is pywavelets' ``wavedec2`` with mode 'periodization' on
the padded image extended to a multiple of 2^levels (ISTA treats the extension as unknown,
unmeasured pixels); with an orthonormal wavelet it is an orthogonal operator there.

In both, ``lowpass`` marks the coarsest approximation (scaling) coefficients, which ISTA does
not threshold: they carry the local mean and are not sparse.

>>> import numpy as np
>>> W = BlockWavelet("db2", levels=4)
>>> X = np.random.default_rng(0).random((3, 1089))     # three blocks, one per row
>>> C = W.forward(X)
>>> bool(np.allclose(W.adjoint(C), X)), bool(np.isclose((C**2).sum(), (X**2).sum()))
(True, True)
>>> int(W.lowpass.sum())                                 # the 3 x 3 coarse square
9
"""

from functools import lru_cache

import numpy as np
import pywt

from cs_bench.sensing import BLOCK


def _polar(A):
    """Orthonormal rows nearest to the rows of A (the polar factor U V^T of A = U S V^T)."""
    U, _, Vt = np.linalg.svd(A, full_matrices=False)
    return U @ Vt


def _smallest_sv(A):
    return np.linalg.svd(A, compute_uv=False)[-1]


def _thin(A, k):
    """Drop rows of A, one at a time, keeping the best-conditioned k of them."""
    rows = list(range(A.shape[0]))
    while len(rows) > k:
        drop = max(rows, key=lambda r: _smallest_sv(A[[i for i in rows if i != r]]))
        rows.remove(drop)
    return A[rows]


def _include(lo, v, rows):
    """Turn the rows ``rows`` of the orthonormal ``lo`` within their span so span(lo) holds v.

    vb, the part of v the other rows do not carry, must come from the rows ``rows``: u is
    the unit vector of their span nearest to vb, and each of them gets its u-component
    moved to vb/|vb| (a rotation in one plane). All rows stay orthonormal, the other rows
    are untouched, nothing changes if v is already in the span.
    """
    inner = np.delete(lo, rows, 0)
    vb = v - inner.T @ (inner @ v)
    B = lo[rows]
    p = B.T @ (B @ vb)
    if np.linalg.norm(vb - p) <= 1e-12 * np.linalg.norm(v):
        return lo
    u = p / np.linalg.norm(p)
    out = lo.copy()
    out[rows] = B + np.outer(B @ u, vb / np.linalg.norm(vb) - u)
    return out


def orthonormal_level(n, wavelet, smooth):
    """One orthonormal analysis level on length n: an n x n orthogonal matrix.

    The first ceil(n/2) rows are the lowpass (scaling) atoms and their span contains the
    vector ``smooth``; the other rows are the highpass atoms.

    >>> Q = orthonormal_level(33, "db4", np.ones(33))
    >>> Q.shape, bool(np.allclose(Q @ Q.T, np.eye(33))), bool(np.allclose(Q[17:] @ np.ones(33), 0))
    ((33, 33), True, True)
    """
    cA, cD = pywt.dwt(np.eye(n), wavelet, mode="periodization", axis=0)  # columns: atoms of e_i
    border = np.flatnonzero((np.abs(cA[:, 0]) > 1e-12) | (np.abs(cA[:, -1]) > 1e-12))
    lo = _include(_polar(cA), np.asarray(smooth, dtype=np.float64), border)
    hi = cD - (cD @ lo.T) @ lo  # highpass atoms projected off the lowpass span
    hi = _thin(hi, n - lo.shape[0])
    return np.vstack([lo, _polar(hi)])


@lru_cache(maxsize=32)
def block_level_matrices(block, wavelet, levels):
    """The orthogonal matrices of levels 1..levels on lengths block, ceil(block/2), ...

    The constant signal is carried down: level l's lowpass span contains the lowpass
    coefficients of a constant at level l - 1.
    """
    mats, n, smooth = [], block, np.ones(block)
    for _ in range(levels):
        Q = orthonormal_level(n, wavelet, smooth)
        Q.setflags(write=False)
        mats.append(Q)
        n = (n + 1) // 2
        smooth = Q[:n] @ smooth
    return tuple(mats)


def max_block_levels(block=BLOCK):
    """Deepest block decomposition that keeps at least 2 lowpass samples per side (5 for 33)."""
    levels, n = 0, block
    while (n + 1) // 2 >= 2 and n > 2:
        levels, n = levels + 1, (n + 1) // 2
    return levels


class BlockWavelet:
    """Orthonormal 2-D wavelet transform W of B x B blocks (rows of an n_blocks x B^2 array).

    ``forward(X)`` returns W x for every row x of X (coefficients in the usual Mallat layout
    of a B x B array, coarse square top-left, flattened row-major); ``adjoint(C)`` returns
    W^T c = W^{-1} c. ``matrix()`` gives W explicitly (B^2 x B^2).
    """

    def __init__(self, wavelet="db2", levels=4, block=BLOCK):
        if not 1 <= levels <= max_block_levels(block):
            raise ValueError(f"levels must be in 1..{max_block_levels(block)} for {block}x{block} blocks")
        self.wavelet, self.levels, self.block = wavelet, int(levels), block
        self.mats = block_level_matrices(block, wavelet, self.levels)
        coarse = (self.mats[-1].shape[0] + 1) // 2
        mask = np.zeros((block, block), bool)
        mask[:coarse, :coarse] = True
        self.lowpass = mask.ravel()

    def forward(self, X):
        """W x for each row x of X (n_blocks x B^2)."""
        b = self.block
        C = np.array(X, dtype=np.float64).reshape(-1, b, b)
        for Q in self.mats:  # level by level on the lowpass square: Q S Q^T
            m = Q.shape[0]
            C[:, :m, :m] = Q @ C[:, :m, :m] @ Q.T
        return C.reshape(-1, b * b)

    def adjoint(self, C):
        """W^T c for each row c of C; equals the inverse since W is orthogonal."""
        b = self.block
        X = np.array(C, dtype=np.float64).reshape(-1, b, b)
        for Q in reversed(self.mats):
            m = Q.shape[0]
            X[:, :m, :m] = Q.T @ X[:, :m, :m] @ Q
        return X.reshape(-1, b * b)

    def matrix(self):
        """W as an explicit B^2 x B^2 matrix (row i = i-th analysis atom)."""
        return self.forward(np.eye(self.block**2)).T


class ImageWavelet:
    """Orthonormal 2-D wavelet transform of an image (pywavelets, mode 'periodization').

    The operator acts on ``ext_shape``: ``shape`` rounded up to a multiple of 2^levels; the
    caller zero-extends (or crops) between the two. Coefficients come as one 2-D array of
    ``ext_shape`` (pywavelets' ``coeffs_to_array`` layout, coarse band top-left).

    >>> import numpy as np
    >>> W = ImageWavelet((66, 66), "db4", levels=3)
    >>> W.ext_shape
    (72, 72)
    >>> x = np.random.default_rng(0).random(W.ext_shape)
    >>> bool(np.allclose(W.adjoint(W.forward(x)), x)), bool(np.isclose((W.forward(x)**2).sum(), (x**2).sum()))
    (True, True)
    """

    def __init__(self, shape, wavelet="db4", levels=4):
        if not pywt.Wavelet(wavelet).orthogonal:
            raise ValueError(f"wavelet '{wavelet}' is not orthogonal")
        step = 2**int(levels)
        self.wavelet, self.levels, self.shape = wavelet, int(levels), tuple(shape)
        self.ext_shape = tuple(-(-s // step) * step for s in shape)
        coeffs = self._dec(np.zeros(self.ext_shape))
        _, self.slices = pywt.coeffs_to_array(coeffs)
        self.lowpass = np.zeros(self.ext_shape, bool)
        self.lowpass[self.slices[0]] = True

    def _dec(self, x):
        return pywt.wavedec2(x, self.wavelet, mode="periodization", level=self.levels)

    def forward(self, x):
        """W x of an image of ``ext_shape``, as a 2-D coefficient array."""
        arr, _ = pywt.coeffs_to_array(self._dec(x))
        return arr

    def adjoint(self, c):
        """W^T c (= W^{-1} c): coefficient array -> image of ``ext_shape``."""
        coeffs = pywt.array_to_coeffs(c, self.slices, output_format="wavedec2")
        return pywt.waverec2(coeffs, self.wavelet, mode="periodization")
