"""TVAL3: total-variation minimisation by an augmented Lagrangian method.

Li, Yin, Jiang, Zhang, "An efficient augmented Lagrangian method with applications to total
variation minimization", Comput. Optim. Appl. 56 (2013) 507-530 ("the paper"). Written from
the paper in its symbols; no code was copied or translated.

Problem (the paper's TV model):  min_u  sum_i ||D_i u||  s.t.  A u = b,
with D_i u in R^2 the forward differences of u at pixel i (periodic boundary), ||.|| the
1-norm (anisotropic TV) or the 2-norm (isotropic TV), A = Phi and b = 255 y (pixels on the
0-255 scale, as the ReconNet authors ran TVAL3). Splitting w_i = D_i u (constraints
D_i u = w_i with multipliers nu_i, A u = b with multiplier lambda) gives the paper's
augmented Lagrangian for TV

    L_A(w, u) = sum_i ( ||w_i|| - nu_i^T (D_i u - w_i) + beta/2 ||D_i u - w_i||^2 )
                - lambda^T (A u - b) + mu/2 ||A u - b||^2,

minimised approximately for fixed multipliers (nu, lambda) by the paper's nonmonotone
alternating direction scheme (the inner loop), after which the multipliers are updated as
in the classic augmented Lagrangian multiplier method (the outer loop); together this is
the paper's TVAL3 scheme. Equations are named here by their content, in the paper's
symbols:

* w-subproblem, exact: w_i = shrink(D_i u - nu_i/beta, 1/beta); anisotropic TV uses the 1-D
  soft threshold per component, isotropic TV the 2-D shrinkage of the pair
  (:func:`shrink_aniso`, :func:`shrink_iso`).
* u-subproblem, one step: u+ = u - alpha d with d the gradient of L_A in u,
  d = D^T(beta (D u - w) - nu) + A^T(mu (A u - b) - lambda); alpha starts from the
  Barzilai-Borwein step s^T s / s^T y (s = u_k - u_{k-1}, y the change of d for the same
  w, i.e. the u-Hessian times s) and is backtracked (alpha <- rho alpha) until the
  nonmonotone Armijo condition of Zhang and Hager holds,
  L_A(u+) <= C_k + delta d^T (u+ - u), with C_{k+1} = (eta Q_k C_k + L_A(u+)) / Q_{k+1},
  Q_{k+1} = eta Q_k + 1. With ``nonneg`` u+ is projected onto u >= 0 inside the search
  (a projected-gradient step; the Armijo term then uses u+ - u).
* The inner loop stops when ||u_{l+1} - u_l|| / ||u_l|| < ``tol_inner``; then
  nu <- nu - beta (D u - w), lambda <- lambda - mu (A u - b).
* Continuation (as the TVAL3 solver does; the ALM allows the penalty to grow): mu and
  beta start at ``mu / cont`` and ``beta / cont`` and are multiplied by ``cont_rate`` at
  every outer step until they reach their final values.
* Start: u = A^T b (projected when ``nonneg``), nu = 0, lambda = 0, w = D u; the first
  step is the exact steepest-descent step d^T d / d^T H d.
* Stop when, with the final mu and beta, an outer step changed u by less than ``tol``
  (relative), or after ``maxit`` u-steps in total.

Block scope solves every block of the image at once: arrays are n_blocks x 33 x 33, every
block has its own step sizes, penalties, multipliers and line-search state, and a
per-block convergence mask; converged blocks are removed from the working arrays, so the
iteration count is per block (at most ``maxit``); the products with Phi run in torch on
one thread (see :func:`_solve_blocks`). Image scope runs the same solver on the whole
padded image (periodic boundary on the padded image) with the data term through
``problem.A`` / ``problem.At``.

Fixed by the ReconNet authors' run: mu = 2^8, beta = 2^5, tol = 1e-3, maxit = 300,
anisotropic, non-negative, 0-255 pixels. Not fixed by the paper, chosen on T91 only (never
Set11) with ``scripts/tune_tval3.py`` (grid over cont in {64, ..., 16384}, cont_rate in
{2, 4}, tol_inner in {1e-3, 3e-4}; 11 T91 images, ratios 0.10/0.25/0.50, best mean PSNR,
fewer u-steps within 0.05 dB): cont = 4096, cont_rate = 2, tol_inner = 3e-4. The start
matters: with cont = 64 the 0-255 problem is far from solved after 300 steps. The
line-search constants delta = 1e-4, rho = 0.5, eta = 0.85 are the usual Armijo values and
Zhang and Hager's suggested eta, not tuned.

>>> import numpy as np
>>> from cs_bench.problem import Problem
>>> img = np.zeros((33, 33)); img[8:25, 8:25] = 0.8
>>> p = Problem.from_image(img, ratio=0.3, padding="minimal")
>>> rec = TVAL3().reconstruct(p)
>>> rec.shape, bool(np.abs(rec - img).max() < 0.05)
((33, 33), True)
"""

from typing import ClassVar

import numpy as np

from cs_bench.errors import CSBenchError
from cs_bench.method import Method
from cs_bench.operator import BlockCS
from cs_bench.registry import register
from cs_bench.threads import torch_threads

DELTA, RHO, ETA = 1e-4, 0.5, 0.85  # Armijo constant, backtracking factor, Zhang-Hager eta
MAX_BACKTRACK = 20
STEP_MIN, STEP_MAX = 1e-12, 1e12


# -- the TV pieces --------------------------------------------------------------------------
def grad(u, out=None):
    """Forward differences with periodic boundary: (..., H, W) -> (..., 2, H, W).

    Component 0 is the horizontal difference u[i, j+1] - u[i, j], component 1 the vertical.

    >>> grad(np.array([[0.0, 1.0], [3.0, 5.0]]))[0].tolist()
    [[1.0, -1.0], [2.0, -2.0]]
    """
    if out is None:
        out = np.empty(u.shape[:-2] + (2,) + u.shape[-2:])
    dx, dy = out[..., 0, :, :], out[..., 1, :, :]
    np.subtract(u[..., 1:], u[..., :-1], out=dx[..., :-1])
    np.subtract(u[..., :1], u[..., -1:], out=dx[..., -1:])
    np.subtract(u[..., 1:, :], u[..., :-1, :], out=dy[..., :-1, :])
    np.subtract(u[..., :1, :], u[..., -1:, :], out=dy[..., -1:, :])
    return out


def grad_t(p):
    """The adjoint D^T of :func:`grad`: (..., 2, H, W) -> (..., H, W)."""
    px, py = p[..., 0, :, :], p[..., 1, :, :]
    out = np.empty(px.shape)
    np.subtract(px[..., :-1], px[..., 1:], out=out[..., 1:])
    np.subtract(px[..., -1:], px[..., :1], out=out[..., :1])
    out[..., 1:, :] += py[..., :-1, :]
    out[..., :1, :] += py[..., -1:, :]
    out -= py
    return out


def shrink_aniso(v, t):
    """1-D soft threshold, componentwise: argmin_w |w| + (1/2t)(w - v)^2 = v - clip(v, -t, t).

    >>> shrink_aniso(np.array([-3.0, -0.5, 0.2, 2.0]), 1.0).tolist()
    [-2.0, 0.0, 0.0, 1.0]
    """
    return v - np.clip(v, -t, t)


def shrink_iso(v, t):
    """2-D shrinkage of the pairs along axis -3: argmin_w ||w||_2 + (1/2t)||w - v||^2.

    >>> v = np.array([3.0, 4.0]).reshape(2, 1, 1)
    >>> np.round(shrink_iso(v, 1.0).ravel(), 12).tolist()
    [2.4, 3.2]
    """
    norm = np.sqrt(np.sum(v * v, axis=-3, keepdims=True))
    scale = 1.0 - t / np.maximum(norm, t)  # 0 where ||v|| <= t
    return v * scale


def tv_norm(w, tv):
    """sum_i ||w_i|| (1-norm for "aniso", 2-norm for "iso") per batch item (axis 0)."""
    if tv == "aniso":
        return np.abs(w).reshape(len(w), -1).sum(axis=1)
    return np.sqrt(np.sum(w * w, axis=-3)).reshape(len(w), -1).sum(axis=1)


def _dot(a, b):
    """Inner product per batch item."""
    return np.einsum("ij,ij->i", a.reshape(len(a), -1), b.reshape(len(b), -1))


def _col(x, ndim):
    """Per-item scalars (n,) -> broadcastable (n, 1, ..., 1)."""
    return x.reshape((-1,) + (1,) * (ndim - 1))


# -- the solver ------------------------------------------------------------------------------
class _State:
    """Per-item arrays of the solver; :meth:`keep` drops converged items."""

    names = ("idx", "u", "Du", "Au", "Atr", "u_outer", "nu", "lam", "b", "mu", "beta", "C",
             "Q", "reset", "step")

    def keep(self, mask):
        for name in self.names:
            setattr(self, name, getattr(self, name)[mask])


def _trial(S, sel, a, d, w, tvw, A, nonneg):
    """For the items ``sel``: u+ = P(u - a d), s = u+ - u, D u+, A u+, L_A(u+, w), d^T s."""
    u, dd = S.u[sel], d[sel]
    ut = u - _col(a, u.ndim) * dd
    if nonneg:
        np.maximum(ut, 0.0, out=ut)
    Dut, Aut = grad(ut), A(ut)
    rt, rest = Dut - w[sel], Aut - S.b[sel]
    phit = (tvw[sel] + 0.5 * S.beta[sel] * _dot(rt, rt) - _dot(S.nu[sel], rt)
            + 0.5 * S.mu[sel] * _dot(rest, rest) - _dot(S.lam[sel], rest))
    st = ut - u
    return [ut, st, Dut, Aut, phit, _dot(dd, st)]


def solve(b, A, At, mu=256.0, beta=32.0, tol=1e-3, maxit=300, tv="aniso", nonneg=True,
          tol_inner=3e-4, cont=4096.0, cont_rate=2.0):
    """Solve min sum_i ||D_i u|| s.t. A u = b for a batch of independent problems.

    ``b`` holds one problem per entry of axis 0; ``A`` maps a batch u (n x H x W) to the
    shape of b and ``At`` is its adjoint; both act item by item, so any subset of the batch
    can be evaluated alone. Returns (u, number of u-steps per item).
    """
    shrink = shrink_aniso if tv == "aniso" else shrink_iso
    n = len(b)
    S = _State()
    S.idx = np.arange(n)
    S.b = np.asarray(b, dtype=np.float64)
    S.u = At(S.b)  # starting point A^T b (the min-norm solution for orthonormal rows)
    if nonneg:
        np.maximum(S.u, 0.0, out=S.u)
    S.Du, S.Au = grad(S.u), A(S.u)
    S.mu, S.beta = np.full(n, mu / cont), np.full(n, beta / cont)
    S.lam = np.zeros_like(S.b)
    S.nu = np.zeros_like(S.Du)
    S.Atr = At(_col(S.mu, S.b.ndim) * (S.Au - S.b) - S.lam)
    S.u_outer = S.u.copy()
    S.C, S.Q = np.zeros(n), np.ones(n)
    S.reset = np.ones(n, dtype=bool)
    S.step = np.full(n, np.nan)  # NaN: no BB step yet, take the exact (Cauchy) step
    out = np.empty_like(S.u)
    iters = np.zeros(n, dtype=int)
    wb, rb = S.Du.ndim, S.b.ndim  # ndims for broadcasting per-item scalars

    for it in range(maxit):
        beta_w = _col(S.beta, wb)
        # w-subproblem, exact: shrinkage of D u - nu / beta with threshold 1 / beta
        w = shrink(S.Du - S.nu / beta_w, 1.0 / beta_w)
        tvw = tv_norm(w, tv)
        # d = gradient of L_A in u at (u, w)
        r = S.Du - w
        d = grad_t(beta_w * r - S.nu)
        d += S.Atr
        if S.reset.any():  # new multipliers or penalties: restart the nonmonotone reference
            res = S.Au - S.b
            phi = (tvw + _dot(0.5 * beta_w * r - S.nu, r)
                   + _dot(0.5 * _col(S.mu, rb) * res - S.lam, res))
            S.C = np.where(S.reset, phi, S.C)
            S.Q = np.where(S.reset, 1.0, S.Q)
            S.reset[:] = False
        first = np.isnan(S.step)
        if first.any():  # exact step along -d for the quadratic in u: d^T d / d^T H d
            f = np.flatnonzero(first)
            df = d[f]
            Adf, Ddf = A(df), grad(df)
            dHd = S.beta[f] * _dot(Ddf, Ddf) + S.mu[f] * _dot(Adf, Adf)
            S.step[f] = _dot(df, df) / np.maximum(dHd, 1e-300)
        alpha = np.clip(S.step, STEP_MIN, STEP_MAX)

        # nonmonotone (Zhang-Hager) backtracking, item by item
        un, s, Dun, Aun, phin, ds = _trial(S, slice(None), alpha, d, w, tvw, A, nonneg)
        bad = np.flatnonzero(phin > S.C + DELTA * ds)
        for _ in range(MAX_BACKTRACK):
            if not len(bad):
                break
            alpha[bad] *= RHO
            new = _trial(S, bad, alpha[bad], d, w, tvw, A, nonneg)
            for full, part in zip((un, s, Dun, Aun, phin, ds), new):
                full[bad] = part
            bad = bad[new[4] > S.C[bad] + DELTA * new[5]]

        # BB step s^T s / s^T H s, with s = u+ - u and s^T H s = beta |D s|^2 + mu |A s|^2
        Ds, As = Dun - S.Du, Aun - S.Au
        ss = _dot(s, s)
        sHs = S.beta * _dot(Ds, Ds) + S.mu * _dot(As, As)
        S.step = np.where(sHs > 0, ss / np.maximum(sHs, 1e-300), S.step)
        Qn = ETA * S.Q + 1.0
        S.C = (ETA * S.Q * S.C + phin) / Qn
        S.Q = Qn
        S.u, S.Du, S.Au = un, Dun, Aun
        S.Atr = At(_col(S.mu, rb) * (S.Au - S.b) - S.lam)
        iters[S.idx] += 1

        # inner loop converged -> multipliers, continuation, outer convergence test
        unorm = np.sqrt(_dot(S.u, S.u))
        inner = np.sqrt(ss) <= tol_inner * unorm
        done = np.zeros(len(inner), dtype=bool)
        if inner.any():
            k = np.flatnonzero(inner)
            final = (S.mu[k] >= mu) & (S.beta[k] >= beta)
            du = S.u[k] - S.u_outer[k]
            done[k] = final & (np.sqrt(_dot(du, du)) <= tol * unorm[k])
            S.nu[k] -= _col(S.beta[k], wb) * (S.Du[k] - w[k])
            S.lam[k] -= _col(S.mu[k], rb) * (S.Au[k] - S.b[k])
            S.mu[k] = np.minimum(S.mu[k] * cont_rate, mu)
            S.beta[k] = np.minimum(S.beta[k] * cont_rate, beta)
            S.u_outer[k] = S.u[k]
            S.Atr[k] = At(_col(S.mu[k], rb) * (S.Au[k] - S.b[k]) - S.lam[k])
            S.reset[k] = True
        if it == maxit - 1:
            done[:] = True
        if done.any():
            out[S.idx[done]] = S.u[done]
            if done.all():
                break
            S.keep(~done)
    return out, iters


def _solve_blocks(b, Phi, block, opts):
    """Block scope: :func:`solve` on all blocks at once, products with Phi in torch.

    The two products per step (n x N by N x M) run in torch on one thread: numpy's
    OpenBLAS threads, on a CPU shared with other busy processes, were measured 10-30x
    slower than one thread, and more threads buy little at these sizes.
    """
    import torch

    op = BlockCS(Phi).torch()  # float64, a private copy of Phi

    def A(u):
        return op.A(torch.from_numpy(u.reshape(len(u), -1))).numpy()

    def At(r):
        return op.At(torch.from_numpy(np.ascontiguousarray(r))).numpy().reshape(
            len(r), block, block)

    with torch_threads(1):
        u, _ = solve(b, A, At, **opts)
    return u


# -- the method --------------------------------------------------------------------------------
@register("tval3")
class TVAL3(Method):
    """TVAL3 (Li, Yin, Jiang, Zhang 2013): min TV(u) s.t. Phi u = y, block or image scope.

    Block scope: all blocks at once with per-block convergence masks (see the module
    docstring); image scope: the whole padded image through ``problem.A`` / ``problem.At``.
    """

    family = "classical"
    scopes = ("block", "image")
    params: ClassVar[dict] = {
        "mu": 256.0,  # final penalty on A u = b (ReconNet's TVAL3 run: 2^8)
        "beta": 32.0,  # final penalty on D u = w (2^5)
        "tol": 1e-3,  # outer (ALM) relative-change tolerance
        "maxit": 300,  # u-steps in total, per block
        "tv": "aniso",  # "aniso" or "iso"
        "nonneg": True,  # project u onto u >= 0
        "tol_inner": 3e-4,  # inner (NADA) relative-change tolerance; T91
        "cont": 4096.0,  # continuation: start at mu/cont, beta/cont; T91
        "cont_rate": 2.0,  # continuation factor per outer step; T91
    }
    summary = "TVAL3: TV minimisation, augmented Lagrangian + BB/nonmonotone (Li et al. 2013)"

    def reconstruct(self, problem):
        p = self.p
        if p["tv"] not in ("aniso", "iso"):
            raise CSBenchError(f"tval3: tv must be 'aniso' or 'iso', not '{p['tv']}'")
        y = np.asarray(problem.y, dtype=np.float64)
        if not np.all(np.isfinite(y)):
            raise CSBenchError("tval3: the measurements contain NaN or Inf")
        if int(p["maxit"]) < 1 or min(p["mu"], p["beta"]) <= 0 or p["tol"] < 0:
            raise CSBenchError("tval3: need maxit >= 1, mu > 0, beta > 0 and tol >= 0")
        if p["cont"] < 1 or (p["cont"] > 1 and p["cont_rate"] <= 1):
            raise CSBenchError("tval3: need cont >= 1 and, when cont > 1, cont_rate > 1")
        opts = {k: p[k] for k in ("mu", "beta", "tol", "maxit", "tv", "nonneg", "tol_inner",
                                  "cont", "cont_rate")}
        opts["maxit"] = int(opts["maxit"])
        b = 255.0 * y
        if self.scope == "block":
            u = _solve_blocks(b, problem.Phi, problem.block, opts)
            return problem.to_image(u.reshape(len(u), -1)) / 255.0

        def A(u):
            return problem.A(u[0])[None]

        def At(r):
            return problem.At(r[0])[None]

        u, _ = solve(b[None], A, At, **opts)
        return problem.crop(u[0]) / 255.0
