"""D-AMP: denoising-based approximate message passing.

C. A. Metzler, A. Maleki, R. G. Baraniuk, "From denoising to compressed sensing",
IEEE Trans. Inf. Theory 62(9), 2016 (arXiv:1406.4175). The D-AMP iteration (Sec. III), in
the paper's symbols, from x^0 = 0 and z^{-1} = 0, for t = 0, 1, ..., iters - 1:

    z^t     = y - A x^t + z^{t-1} div D_{sigma^{t-1}}(x^{t-1} + A^T z^{t-1}) / m     (1)
    sigma^t = ||z^t||_2 / sqrt(m)                                                  (2)
    x^{t+1} = D_{sigma^t}(x^t + A^T z^t)                                            (3)

The last term of (1) is the Onsager correction: it keeps the effective noise
x^t + A^T z^t - x_o close to white Gaussian of std sigma^t, the noise D is built for. Its
divergence is the paper's Monte-Carlo estimate (Sec. III-D, after Ramani, Blu and Unser
2008) with one probe b ~ N(0, I) per iteration (seeded by ``seed``):

    div D_sigma(r) ~= b^T (D_sigma(r + eps b) - D_sigma(r)) / eps,  eps = max|r| / 1000.   (4)

Scaling. AMP assumes A with roughly unit-norm columns (i.i.d. N(0, 1/m) entries). The
harness's Phi has orthonormal rows, so its columns have norm ~ sqrt(M/N); here
A = sqrt(N/M) Phi and y' = sqrt(N/M) y (the same equations times one constant), so the
image and its [0, 1] pixel scale are unchanged and sigma^t is on the [0, 1] scale.

Blocks. The harness measures every 33 x 33 block with the same Phi, so A is block-diagonal.
AMP's Onsager term for a measurement row i is z_i sum_j A_ij^2 dD_j/dr_j; inside block k,
A_ij^2 ~ 1/M, so (1) and (2) hold per block: z_k^t carries z_k^{t-1} div_k / M (div_k: the
divergence (4) over the pixels of block k) and the effective noise in block k has std
sigma_k = ||z_k|| / sqrt(M). With one block this is the paper's (1)-(2) exactly.

Scopes. ``block`` (the paper's protocol): every block is its own D-AMP problem, D applied to
the 33 x 33 block at its own sigma_k. With ``denoiser="bm3d-batch"`` (the default) all blocks
of the image go through BM3D in one batched call per iteration (the block is BM3D's search
window); any other denoiser is called block by block (the ``bm3d`` package's fixed cost
per call makes that slow: 64 calls per iteration for a 256 x 256 image). ``image``: D
denoises the whole zero-padded image (``problem.A`` / ``problem.At`` measure it). The sigma_k then differ a lot between blocks (a textured block
keeps ~10 times the noise of a flat one) while D takes one sigma; D-AMP gets
sigma = max_k sigma_k. The paper's single sigma = ||z|| / sqrt(m) leaves the noisiest blocks
under-denoised, and there AMP diverges (T91, tv denoiser: 5 dB at ratio 0.1; see
scripts/tune_damp.py --sigma). ``levels`` = L > 1 denoises at L sigmas from max_k sigma_k
down to min_k sigma_k (geometric) and gives every block the output of the smallest level
>= its sigma_k: L times the cost, about 1 dB better on T91 with L = 4.

Parameters. ``iters`` = 30. ``denoiser``: bm3d-batch (default; BM3D written here, batched,
:mod:`cs_bench.baselines.bm3d_batch`, validated against the package in
results/denoiser_validation.md), bm3d (the optional package, see
:mod:`cs_bench.baselines.denoisers`), nlm, tv or wavelet. ``seed`` seeds the probes; the
result is deterministic given it. ``bm3d_profile`` ("np" or "lc") and ``bm3d_ht_iters`` (BM3D
runs only its hard-thresholding stage in the first ``bm3d_ht_iters`` iterations, the full
two-stage BM3D after) trade time for quality. The default is the full two-stage BM3D in every
iteration with the low-complexity profile "lc", chosen on T91 with the package (never Set11) with
``scripts/tune_damp.py --bm3d --bm3d-reference --images 3 --crop 128`` (t1, t13, t16, centre
128 x 128 crops; mean PSNR, CPU seconds per crop on one core beside a training job):

    setting                 ratio 0.10        ratio 0.25
    np (normal profile)     31.03 dB, 69.8 s  34.96 dB, 68.4 s
    lc (default)            30.51 dB, 25.0 s  34.84 dB, 24.2 s
    lc, 25 ht iterations    30.20 dB, 17.2 s  34.71 dB, 17.0 s
    lc, 29 ht iterations    27.16 dB, 16.0 s  33.87 dB, 15.6 s
    lc, 30 ht iterations    26.05 dB, 15.5 s  32.84 dB, 15.4 s

"np" costs 2.8x the time for 0.5 dB at 0.10 and 0.1 dB at 0.25; the last iterations need
the Wiener stage (ht-only iterations lose up to 4 dB). Seconds per image at both scopes and
with both BM3Ds are in results/scope.md and results/bench.md.

Known limit: (2) assumes i.i.d. Gaussian A. With orthonormal rows the pseudo-data's noise is
smaller than sigma^t (at ratio r by up to sqrt(1 - r) at t = 0, and at ratio 1 A is orthogonal
and the only noise left is the Onsager remnant), so D over-smooths at high ratios: with a
natural image at ratio 1 D-AMP stalls near 30-35 dB; it recovers x_o exactly only when D's
bias on x_o vanishes with sigma (e.g. tv on a piecewise-constant image, see the tests).

>>> import numpy as np
>>> from cs_bench.problem import Problem
>>> from cs_bench.metrics import psnr
>>> img = np.kron(np.random.default_rng(0).random((4, 4)), np.ones((16, 16)))  # 64 x 64
>>> p = Problem.from_image(img, ratio=0.5)
>>> rec = DAMP(denoiser="tv", iters=10).reconstruct(p)
>>> rec.shape, bool(psnr(img, rec) > 30)
((64, 64), True)
"""

import numpy as np

from cs_bench.errors import CSBenchError
from cs_bench.method import Method
from cs_bench.registry import register

from .denoisers import get_denoiser


def probe_eps(r):
    """The paper's probe step: eps = max|r| / 1000 (scaled to the signal)."""
    return max(float(np.max(np.abs(r))), 1e-12) / 1000.0


def mc_divergence(denoiser, r, sigma, b):
    """D(r) and the Monte-Carlo estimate of div D(r) with the probe ``b``.

    div D(r) ~= b^T (D(r + eps b) - D(r)) / eps with eps = max|r| / 1000. Returns (D(r), div).

    >>> from cs_bench.baselines.denoisers import Denoiser
    >>> class Half(Denoiser):
    ...     def denoise(self, x, sigma):
    ...         return 0.5 * x
    >>> r = np.ones((8, 8)); b = np.random.default_rng(0).standard_normal(r.shape)
    >>> round(float(mc_divergence(Half(), r, 0.1, b)[1] / (0.5 * (b * b).sum())), 6)
    1.0
    """
    eps = probe_eps(r)
    d, d_probe = denoiser.pair(r, r + eps * b, sigma)
    return d, float(np.vdot(b, d_probe - d)) / eps


def damp(y, A, denoise_step, iters, rng):
    """D-AMP on block rows: y (n_blocks x M), A (M x N) -> X (n_blocks x N).

    Every block k has its own residual z_k, noise level sigma_k = ||z_k|| / sqrt(M) and
    Onsager term z_k div_k / M, where div_k is the divergence of the denoiser over the pixels
    of block k. For a block-diagonal A this is AMP's own correction (the Onsager term of a
    measurement row i is z_i sum_j A_ij^2 dD_j/dr_j, and A_ij^2 ~ 1/M inside its block);
    with one block it is the paper's z div / m.

    ``denoise_step(t, R, sigma, B)`` -> (X, div): denoises the pseudo-data R (n_blocks x N)
    given the per-block sigma and returns the per-block divergence estimated with the probe
    B (B is None at the last iteration, where no divergence is needed).
    """
    M = A.shape[0]
    X = np.zeros((y.shape[0], A.shape[1]))
    Z = np.zeros_like(y)
    onsager = np.zeros(y.shape[0])  # div_k / M of the previous iteration; 0 at t = 0
    for t in range(iters):
        Z = y - X @ A.T + onsager[:, None] * Z  # z^t, with the Onsager correction
        sigma = np.linalg.norm(Z, axis=1) / np.sqrt(M)  # sigma^t, per block
        R = X + Z @ A  # pseudo-data x^t + A^T z^t ~ x_o + noise of std sigma_k in block k
        B = rng.standard_normal(R.shape) if t < iters - 1 else None
        X, div = denoise_step(t, R, sigma, B)
        if div is not None:
            onsager = div / M
    return X


def image_step(problem, denoise_at, levels):
    """Image scope: denoise the whole padded image at sigma^ >= every block's sigma_k.

    levels = 1: one call at sigma^ = max_k sigma_k. levels = L > 1: L calls at sigmas spaced
    geometrically from max_k sigma_k down to min_k sigma_k; each block takes the output of the
    smallest level >= its sigma_k.
    """

    def step(t, R, sigma, B):
        den = denoise_at(t)
        r = problem.to_padded(R)
        top = float(sigma.max())
        if levels <= 1 or not sigma.min() > 0:
            grid = np.array([top])
        else:
            grid = np.geomspace(top, float(sigma.min()), levels)
        which = np.sum(grid[None, :] >= sigma[:, None] * (1 - 1e-12), axis=1) - 1
        X = np.zeros_like(R)
        div = None if B is None else np.zeros(R.shape[0])
        eps = probe_eps(r)
        for j, level in enumerate(grid):
            sel = which == j
            if not sel.any():
                continue
            if B is None:
                X[sel] = problem.to_blocks(den(r, level))[sel]
                continue
            d, d_probe = den.pair(r, r + eps * problem.to_padded(B), level)
            D, Dp = problem.to_blocks(d), problem.to_blocks(d_probe)
            X[sel] = D[sel]
            div[sel] = np.sum(B[sel] * (Dp[sel] - D[sel]), axis=1) / eps
        return X, div

    return step


def block_step(problem, denoise_at):
    """Block scope: denoise every 33 x 33 block alone at its own sigma_k.

    A batched denoiser (``bm3d-batch``) takes all blocks in one call, each block its own
    image at its own sigma_k, and the probes r_k + eps_k b_k in a second call with the
    matching of the first (eps_k = max|r_k| / 1000, Eq. 4 per block); any other denoiser
    is called block by block.
    """
    b = problem.block

    def step(t, R, sigma, B):
        den = denoise_at(t)
        if hasattr(den, "pair_batch"):
            n = R.shape[0]
            Rb = R.reshape(n, b, b)
            if B is None:
                return den.batch(Rb, sigma).reshape(n, -1), None
            eps = np.maximum(np.max(np.abs(R), axis=1), 1e-12) / 1000.0
            d, d_probe = den.pair_batch(Rb, Rb + eps[:, None, None] * B.reshape(n, b, b), sigma)
            D, Dp = d.reshape(n, -1), d_probe.reshape(n, -1)
            return D, np.sum(B * (Dp - D), axis=1) / eps
        X = np.empty_like(R)
        div = None if B is None else np.empty(R.shape[0])
        for k in range(R.shape[0]):
            r = R[k].reshape(b, b)
            if B is None:
                X[k] = den(r, sigma[k]).ravel()
            else:
                d, div[k] = mc_divergence(den, r, sigma[k], B[k].reshape(b, b))
                X[k] = d.ravel()
        return X, div

    return step


@register("d-amp")
class DAMP(Method):
    family = "classical"
    scopes = ("image", "block")
    params = {"iters": 30, "denoiser": "bm3d-batch", "seed": 0, "levels": 1, "bm3d_ht_iters": 0,
              "bm3d_profile": "lc"}  # lc: chosen on T91 for time, see BM3D_CHOICE below
    summary = "D-AMP (Metzler et al. 2016): AMP with a BM3D/NLM/TV/wavelet denoiser"

    def _denoisers(self):
        """Function t -> denoiser of iteration t."""
        name = str(self.p["denoiser"]).lower()
        if name not in ("bm3d", "bm3d-batch"):
            d = get_denoiser(name)
            return lambda t: d
        opts = {"profile": self.p["bm3d_profile"]}
        if name == "bm3d-batch":  # block scope: the 33 x 33 block is the search window
            opts["search"] = "image" if self.scope == "block" else "window"
        full = get_denoiser(name, stages="all", **opts)
        ht = get_denoiser(name, stages="ht", **opts)
        k = int(self.p["bm3d_ht_iters"])
        return lambda t: ht if t < k else full

    def reconstruct(self, problem):
        y = np.asarray(problem.y, dtype=np.float64)
        if not np.all(np.isfinite(y)):
            raise CSBenchError("the measurements contain NaN or Inf; D-AMP needs finite values")
        iters = int(self.p["iters"])
        if iters < 1:
            raise CSBenchError(f"d-amp: iters must be >= 1, got {iters}")
        denoise_at = self._denoisers()
        Phi = np.asarray(problem.Phi, dtype=np.float64)
        M, N = Phi.shape
        s = np.sqrt(N / M)  # A = s Phi has columns of norm ~ 1; y' = s y
        if self.scope == "image":
            step = image_step(problem, denoise_at, int(self.p["levels"]))
        else:
            step = block_step(problem, denoise_at)
        rng = np.random.default_rng(int(self.p["seed"]))
        X = damp(s * y, s * Phi, step, iters, rng)
        return np.clip(problem.to_image(X), 0.0, 1.0)
