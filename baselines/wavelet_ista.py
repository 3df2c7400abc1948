"""ISTA and FISTA with an orthonormal wavelet transform (``ista-wavelet``, ``fista-wavelet``).

The problem of the ISTA-Net paper (Zhang & Ghanem, CVPR 2018), Eq. (1), with Psi = W an
orthonormal wavelet transform:

    min_x  F(x) = 1/2 ||Phi x - y||_2^2 + tau ||W x||_1          (coarse band not penalised)

ISTA alternates the gradient step of Eq. (2) and the proximal step of Eq. (3):

    Eq. (2)  r^(k) = x^(k-1) - rho Phi^T (Phi x^(k-1) - y),   rho = 1 / ||Phi||_2^2
    Eq. (3)  x^(k) = argmin_x 1/2 ||x - r^(k)||^2 + rho tau ||W x||_1
                   = W^T soft(W r^(k), rho tau)                   (W orthonormal)

(the lambda of the paper's Eq. (3) is rho times the lambda of its Eq. (1); with the
harness's Phi, whose rows are orthonormal, rho = 1 and the threshold is tau). FISTA (Beck &
Teboulle, SIAM J. Imaging Sci. 2009, Eqs. (4.1)-(4.3)) applies the same step at an
extrapolated point z (their y_k; renamed to keep y for the measurements):

    (4.1) x_k = W^T soft(W (z_k - rho Phi^T (Phi z_k - y)), rho tau)
    (4.2) t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2,                  t_1 = 1, z_1 = x_0 = 0
    (4.3) z_{k+1} = x_k + ((t_k - 1) / t_{k+1}) (x_k - x_{k-1})

The coarsest approximation (scaling) coefficients are never thresholded: they hold the
local mean brightness, which is large and not sparse; thresholding them would only shrink
the image towards black. They are also left out of the l1 term of F.

Scopes. ``block`` (default, the papers' protocol): every 33 x 33 block on its own, with the
orthonormal 1089 x 1089 block transform of :mod:`cs_bench.baselines.wavelet_ops` (pywavelets
'db2' filters made orthonormal on length 33, the constant kept in the coarse band). All
blocks are solved together as n_blocks x 1089 arrays. ``image``: one unknown for the whole
image, W = pywavelets' wavedec2 ('db4', mode 'periodization') on the padded image extended
to a multiple of 2^levels (the extension is unmeasured and solved for, then cropped), the
data term through ``problem.A`` / ``At``. Start: x_0 = 0, so the first step of Eq. (2) is
the backprojection rho Phi^T y.

tau, the iteration count and the number of levels are chosen from :data:`TUNED` by ratio
(see there how); every one can be set by hand: ``get_method("ista-wavelet", tau=0.01,
iters=300, levels=3, wavelet="haar")``.

>>> import numpy as np
>>> from cs_bench.problem import Problem
>>> from cs_bench.registry import get_method
>>> img = np.random.default_rng(0).random((40, 40))
>>> p = Problem.from_image(img, ratio=0.5)
>>> get_method("fista-wavelet", iters=20).reconstruct(p).shape
(40, 40)
"""

from typing import ClassVar

import numpy as np
import pywt

from cs_bench.errors import CSBenchError
from cs_bench.method import Method
from cs_bench.operator import BlockCS
from cs_bench.prox import soft
from cs_bench.registry import register

from .wavelet_ops import BlockWavelet, ImageWavelet, max_block_levels

#: Default wavelet per scope. Block: 'db2', 'db4' and 'haar' were within 0.3 dB on T91 crops
#: (see wavelet_ops); image: 'db4', an orthonormal wavelet with 4 vanishing moments.
DEFAULT_WAVELET = {"block": "db2", "image": "db4"}

#: (method, scope) -> {ratio: (tau, iters, levels)}, on the [0, 1] pixel scale.
#:
#: Found by ``scripts/tune_wavelet.py`` (run 2026-11-24, one BLAS thread) on T91 only, never
#: Set11: block scope on 8 T91 images (t1, t19, t3, t38, t47, t55, t63, tt13; centre crops
#: 120 x 120), image scope on 6 (t11, t4, t49, t58, tt10, tt2; centre crops 180 x 180), with
#: the default wavelets ('db2' block, 'db4' image). Grid: levels 1-5 (block) / 1-6 (image),
#: picked by FISTA at 100 iterations and shared with ISTA; tau from {1e-3, 3e-3, 1e-2, 3e-2}
#: extended by factors of 3 while the best was at an edge; iterations from
#: {50, 100, 200, 400, 800} (ISTA) and {25, 50, 100, 200, 400} (FISTA): the fewest within
#: 0.05 dB of the best mean PSNR. ISTA at 0.5 / 0.6 (and image scope at several ratios)
#: still gained at 800, the largest count tried. With few measurements the best ISTA tau
#: zeroes all details (0.01: tau 0.27): ISTA does not converge at smaller tau in 800 steps.
TUNED = {
    ("ista-wavelet", "block"): {
        0.01: (0.27, 800, 5), 0.04: (0.09, 200, 4), 0.1: (0.03, 400, 3), 0.2: (0.03, 200, 2),
        0.25: (0.01, 400, 2), 0.3: (0.01, 400, 2), 0.4: (0.01, 400, 2), 0.5: (0.003, 800, 2),
        0.6: (0.003, 800, 2)},
    ("fista-wavelet", "block"): {
        0.01: (0.01, 400, 5), 0.04: (0.09, 100, 4), 0.1: (0.03, 100, 3), 0.2: (0.03, 100, 2),
        0.25: (0.01, 100, 2), 0.3: (0.01, 100, 2), 0.4: (0.00333, 100, 2),
        0.5: (0.003, 100, 2), 0.6: (0.003, 100, 2)},
    ("ista-wavelet", "image"): {
        0.01: (0.27, 800, 5), 0.04: (0.03, 800, 4), 0.1: (0.03, 400, 3), 0.2: (0.03, 400, 2),
        0.25: (0.01, 800, 2), 0.3: (0.01, 400, 2), 0.4: (0.00333, 800, 2),
        0.5: (0.00333, 800, 2), 0.6: (0.003, 800, 2)},
    ("fista-wavelet", "image"): {
        0.01: (0.03, 400, 5), 0.04: (0.03, 100, 4), 0.1: (0.03, 100, 3), 0.2: (0.01, 100, 2),
        0.25: (0.01, 100, 2), 0.3: (0.01, 100, 2), 0.4: (0.00333, 200, 2),
        0.5: (0.00333, 200, 2), 0.6: (0.003, 200, 2)},
}


def tuned_settings(method, scope, ratio):
    """(tau, iters, levels) for a ratio from :data:`TUNED`.

    Between two tuned ratios tau is interpolated linearly in log(tau), the larger of the
    two iteration counts is used and the levels of the nearer one; outside the tuned range
    the nearest ratio's settings are used.

    >>> tau, iters, levels = tuned_settings("fista-wavelet", "block", 0.1)
    >>> tau > 0 and iters >= 1 and levels >= 1
    True
    """
    table = TUNED[(method, scope)]
    keys = sorted(table)
    r = float(ratio)
    if r <= keys[0]:
        return table[keys[0]]
    if r >= keys[-1]:
        return table[keys[-1]]
    lo = max(k for k in keys if k <= r)
    hi = min(k for k in keys if k >= r)
    if hi == lo:
        return table[lo]
    a = (r - lo) / (hi - lo)
    tau = float(np.exp((1 - a) * np.log(table[lo][0]) + a * np.log(table[hi][0])))
    levels = table[lo][2] if a <= 0.5 else table[hi][2]
    return tau, max(table[lo][1], table[hi][1]), levels


def step_size(Phi):
    """rho = 1 / ||Phi||_2^2 (the largest eigenvalue of the smaller Gram matrix)."""
    G = Phi @ Phi.T if Phi.shape[0] <= Phi.shape[1] else Phi.T @ Phi
    L = float(np.linalg.eigvalsh(G)[-1])
    if not np.isfinite(L) or L <= 0:
        raise CSBenchError("Phi has zero or non-finite norm; cannot choose the step rho")
    return 1.0 / L


def iterate(x0, grad, W, rho, tau, iters, fista=False, callback=None):
    """ISTA (Eqs. (2)-(3)) or FISTA ((4.1)-(4.3)) from x0.

    ``grad(x)`` is Phi^T (Phi x - y); ``W`` has ``forward``, ``adjoint`` and ``lowpass``
    (a boolean mask of the coefficients left unthresholded). ``callback(k, x_k)`` is called
    after every iteration.
    """
    keep = W.lowpass
    x_prev = x0
    z = x0
    t = 1.0
    for k in range(1, iters + 1):
        r = z - rho * grad(z)  # Eq. (2) (at z = x^(k-1) for ISTA)
        c = W.forward(r)
        x = W.adjoint(np.where(keep, c, soft(c, rho * tau)))  # Eq. (3) / (4.1)
        if fista:
            t_next = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0  # (4.2)
            z = x + ((t - 1.0) / t_next) * (x - x_prev)  # (4.3)
            t = t_next
        else:
            z = x
        x_prev = x
        if callback is not None:
            callback(k, x)
    return x_prev


def solve_blocks(Y, Phi, tau, iters, W, fista=False, rho=None, callback=None):
    """Solve every block (rows of Y, n_blocks x M) at once; returns X (n_blocks x N)."""
    rho = step_size(Phi) if rho is None else rho
    op = BlockCS(Phi)

    def grad(X):  # Phi^T (Phi x - y) for every row
        return op.At(op.A(X) - Y)

    X0 = np.zeros((Y.shape[0], Phi.shape[1]))
    return iterate(X0, grad, W, rho, tau, iters, fista, callback)


def solve_image(problem, tau, iters, W, fista=False, rho=None, callback=None):
    """Solve for the whole padded image (zero-extended to ``W.ext_shape``); returns it."""
    rho = step_size(problem.Phi) if rho is None else rho
    Hp, Wp = problem.padded_shape
    y = problem.y

    def grad(x):  # A^T (A x - y); the extension beyond the padded image is not measured
        g = np.zeros_like(x)
        g[:Hp, :Wp] = problem.At(problem.A(x[:Hp, :Wp]) - y)
        return g

    return iterate(np.zeros(W.ext_shape), grad, W, rho, tau, iters, fista, callback)


def objective(X, Phi, Y, W, tau):
    """F = 1/2 ||Phi x - y||^2 + tau ||W x||_1 summed over blocks (coarse band excluded)."""
    C = W.forward(X)
    return 0.5 * float(((X @ Phi.T - Y) ** 2).sum()) + tau * float(np.abs(C[:, ~W.lowpass]).sum())


def _check_wavelet(name):
    if name not in pywt.wavelist(kind="discrete") or not pywt.Wavelet(name).orthogonal:
        raise CSBenchError(f"wavelet '{name}' is not an orthogonal pywavelets wavelet "
                           f"(e.g. haar, db2, db4, sym8)")
    return name


class _WaveletISTA(Method):
    family = "classical"
    scopes = ("block", "image")
    params: ClassVar[dict] = {"iters": None, "tau": None, "wavelet": None, "levels": None}
    param_types: ClassVar[dict] = {"iters": int, "tau": float, "wavelet": str, "levels": int}
    fista = False

    def settings(self, ratio):
        """(tau, iters, wavelet, levels) for a ratio: the user's values or the tuned ones."""
        tau, iters, levels = tuned_settings(self.name, self.scope, ratio)
        wavelet = DEFAULT_WAVELET[self.scope]
        p = self.p
        tau = tau if p["tau"] is None else p["tau"]
        iters = iters if p["iters"] is None else p["iters"]
        wavelet = _check_wavelet(wavelet if p["wavelet"] is None else str(p["wavelet"]))
        levels = levels if p["levels"] is None else p["levels"]
        try:
            tau, iters, levels = float(tau), int(iters), int(levels)
        except (TypeError, ValueError):
            raise CSBenchError(f"{self.name}: tau must be a number, iters and levels integers") from None
        if not np.isfinite(tau) or tau < 0:
            raise CSBenchError(f"{self.name}: tau must be finite and >= 0, got {tau}")
        if iters < 1:
            raise CSBenchError(f"{self.name}: iters must be >= 1, got {iters}")
        top = max_block_levels() if self.scope == "block" else 8
        if not 1 <= levels <= top:
            raise CSBenchError(f"{self.name}: levels must be in 1..{top} for scope {self.scope}")
        return tau, iters, wavelet, levels

    def reconstruct(self, problem):
        if not np.all(np.isfinite(problem.y)):
            raise CSBenchError(f"{self.name}: the measurements y contain NaN or Inf")
        tau, iters, wavelet, levels = self.settings(problem.ratio)
        if self.scope == "block":
            W = BlockWavelet(wavelet, levels, problem.block)
            X = solve_blocks(problem.y, problem.Phi, tau, iters, W, self.fista)
            return problem.to_image(X)
        Hp, Wp = problem.padded_shape
        W = ImageWavelet((Hp, Wp), wavelet, levels)
        x = solve_image(problem, tau, iters, W, self.fista)
        return problem.crop(x[:Hp, :Wp])


@register("ista-wavelet")
class ISTAWavelet(_WaveletISTA):
    """ISTA, Eqs. (2)-(3) of ISTA-Net, with an orthonormal wavelet W."""

    summary = "ISTA with an orthonormal wavelet (l1 of W x), tau/iters tuned on T91"
    fista = False


@register("fista-wavelet")
class FISTAWavelet(_WaveletISTA):
    """FISTA (Beck & Teboulle 2009) on the same problem as ``ista-wavelet``."""

    summary = "FISTA with an orthonormal wavelet (l1 of W x), tau/iters tuned on T91"
    fista = True
