"""Overlapping image patches: extraction, block matching into groups, and aggregation.

Helpers for nonlocal patch-group methods (NLR-CS). A patch is identified by the flat index
of its top-left pixel on the grid of all ``(H - p + 1) x (W - p + 1)`` patch positions.

* :func:`all_patches` gives every p x p patch of an image as a row (n_pos x p^2);
* :func:`reference_grid` gives the exemplar (reference) positions, every ``step`` pixels,
  always including the last row and column so every pixel is covered;
* :func:`block_matching` finds, for each reference patch, the ``m`` most similar patches
  (squared Euclidean distance) within a search window, the reference itself first;
* :func:`aggregate` puts patch estimates back and averages the overlaps.

>>> import numpy as np
>>> img = np.random.default_rng(0).random((20, 20))
>>> idx, dist = block_matching(img, p=4, step=3, radius=5, m=8)
>>> idx.shape, float(dist[:, 0].max())       # the reference patch itself comes first
((49, 8), 0.0)
>>> P = all_patches(img, 4)
>>> total, count = aggregate(P[idx], idx, img.shape, 4)
>>> bool(np.allclose(total[count > 0] / count[count > 0], img[count > 0]))
True
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cs_bench.threads import torch_threads


def positions_shape(shape, p):
    """Shape (Hq, Wq) of the grid of patch positions of an image of ``shape``."""
    return shape[0] - p + 1, shape[1] - p + 1


def all_patches(img, p):
    """Every p x p patch of ``img`` as a row, in raster order of the position (n_pos x p^2)."""
    Hq, Wq = positions_shape(img.shape, p)
    return sliding_window_view(img, (p, p)).reshape(Hq * Wq, p * p)


def reference_grid(shape, p, step):
    """Rows and columns of the reference patches: every ``step`` pixels, last one included."""
    Hq, Wq = positions_shape(shape, p)
    rows = np.unique(np.r_[np.arange(0, Hq, step), Hq - 1])
    cols = np.unique(np.r_[np.arange(0, Wq, step), Wq - 1])
    return rows, cols


def block_matching(img, p, step, radius, m, chunk=2048):
    """Group similar patches.

    For every reference patch (positions from :func:`reference_grid`) search the patches
    whose top-left corner lies within ``radius`` pixels (a (2 radius + 1)^2 window, clipped
    at the image border) and keep the ``m`` nearest in squared Euclidean distance.

    Returns ``idx`` (G x m flat position indices, nearest first, the reference itself
    always at column 0) and ``dist`` (G x m squared distances). Distances are
    ||a||^2 + ||b||^2 - 2 a.b, with the cross-correlations a.b of each reference patch
    over its window computed for all references at once by a grouped convolution
    (torch), in chunks of ``chunk`` references. Ties are broken by offset order
    (row-major from the top-left of the window), so the result is deterministic.
    """
    import torch

    img = np.asarray(img, dtype=np.float64)
    Hq, Wq = positions_shape(img.shape, p)
    if Hq < 1 or Wq < 1:
        raise ValueError(f"image {img.shape} is smaller than a {p}x{p} patch")
    rows, cols = reference_grid(img.shape, p, step)
    R, C = np.meshgrid(rows, cols, indexing="ij")
    R, C = R.ravel(), C.ravel()
    r = int(radius)
    n = 2 * r + 1
    m = min(int(m), n * n, Hq * Wq)

    # ||b||^2 of every patch position, +inf outside the grid so those candidates drop out
    sq = all_patches(img**2, p).sum(axis=1).reshape(Hq, Wq)
    sq_win = sliding_window_view(np.pad(sq, r, constant_values=np.inf), (n, n))
    windows = sliding_window_view(np.pad(img, r), (n + p - 1, n + p - 1))
    ref = all_patches(img, p).reshape(Hq, Wq, p, p)

    dist = np.empty((R.size, n * n))
    with torch_threads(1):
        for s in range(0, R.size, chunk):
            r_, c_ = R[s : s + chunk], C[s : s + chunk]
            win = torch.from_numpy(np.ascontiguousarray(windows[r_, c_]))[None]
            kernels = torch.from_numpy(np.ascontiguousarray(ref[r_, c_]))[:, None]
            dot = torch.nn.functional.conv2d(win, kernels, groups=r_.size)[0].numpy()
            d = sq_win[r_, c_] + sq[r_, c_][:, None, None] - 2.0 * dot
            dist[s : s + chunk] = d.reshape(r_.size, n * n)
    np.maximum(dist, 0.0, out=dist)
    centre = (n * n) // 2  # offset (0, 0)
    dist[:, centre] = -1.0  # the reference itself is always kept, and first

    sel = np.argpartition(dist, m - 1, axis=1)[:, :m]
    sel.sort(axis=1)  # offset order, so the stable sort below breaks ties by offset
    order = np.argsort(np.take_along_axis(dist, sel, axis=1), axis=1, kind="stable")
    sel = np.take_along_axis(sel, order, axis=1)
    d = np.take_along_axis(dist, sel, axis=1)
    d[:, 0] = 0.0
    rr = R[:, None] + sel // n - r
    cc = C[:, None] + sel % n - r
    return rr * Wq + cc, d


def aggregate(values, idx, shape, p):
    """Sum patch estimates into an image and count how many cover each pixel.

    ``values`` is (..., p^2) with the leading dimensions of ``idx`` (flat positions).
    Returns ``(total, count)``, both of ``shape``; the average is ``total / count``
    where ``count > 0``.
    """
    Hq, Wq = positions_shape(shape, p)
    flat = np.asarray(idx).ravel()
    vals = np.asarray(values).reshape(flat.size, p * p)
    n = Hq * Wq
    hits = np.bincount(flat, minlength=n).astype(np.float64).reshape(Hq, Wq)
    total = np.zeros(shape)
    count = np.zeros(shape)
    for k in range(p * p):
        u, v = divmod(k, p)
        s = np.bincount(flat, weights=vals[:, k], minlength=n).reshape(Hq, Wq)
        total[u : u + Hq, v : v + Wq] += s
        count[u : u + Hq, v : v + Wq] += hits
    return total, count
