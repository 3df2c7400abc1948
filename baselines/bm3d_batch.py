"""BM3D over a batch of images in one vectorised call (numpy + torch on the CPU).

K. Dabov, A. Foi, V. Katkovnik, K. Egiazarian, "Image denoising by sparse 3-D transform-domain
collaborative filtering", IEEE Trans. Image Processing 16(8):2080-2095, 2007, in its symbols.
Every image z of the batch (shape B x H x W, [0, 1] scale) has its own noise std sigma_b; a
33 x 33 block of the compressive-sensing harness is one image of the batch, so the blocks of
an image (or of many images) are denoised together and no Python loop runs over them.

Step 1 (basic estimate, hard thresholding). For every reference patch Z_xR (N1 x N1, every
``step`` pixels, the last row and column included) the group S_xR^ht holds the positions x
with the normalised distance

    d(Z_xR, Z_x) = ||Z_xR - Z_x||_2^2 / N1^2 <= tau_match^ht                    (paper Eq. 5)

(the N2^ht nearest, the reference first). The group's 3-D spectrum is the 2-D transform T2D
of each patch followed by the 1-D Haar transform T1D across the group, whose size is the
largest power of two <= |S| (Haar needs it). Hard thresholding Y = T3D^-1(Upsilon(T3D(Z_S)))
with Upsilon(c) = c if |c| > lambda_3D sigma else 0 (Eq. 7-8) gives the patch estimates,
each group weighted by w^ht = 1 / (sigma^2 N_har) (N_har: coefficients kept, Eq. 10).

Step 2 (final estimate, Wiener filtering). Groups are matched on the basic estimate
(tau_match^wie, N2^wie); the empirical Wiener shrinkage of the noisy group's spectrum
W = |T3D(Y^basic_S)|^2 / (|T3D(Y^basic_S)|^2 + mu^2 sigma^2) (Eq. 11, mu^2 = 1) gives the
estimates, weighted by w^wie = 1 / (sigma^2 ||W||_2^2) (Eq. 12).

Aggregation (Eq. 9, 13): every estimate is multiplied by its group weight and the 2-D Kaiser
window (beta = 2), summed over all groups and divided by the summed weights.

Transforms. T2D is separable, A X A^T with the 8-point matrix A of the paper's choice:
bior1.5 (full dyadic decomposition, periodic extension, rows normalised to unit norm as in
the authors' code, inverse = A^-1) in step 1 and the orthonormal DCT-II in step 2; T1D is the
orthonormal Haar transform. With unit-norm rows every coefficient of white noise has std
sigma, so the thresholds lambda_3D sigma and mu^2 sigma^2 apply to all coefficients.

Search window. Inside an image whose patch grid fits a window (H - N1 + 1 <= N_S, which is
the case for a 33 x 33 block: 26 <= 39) every patch is a candidate (exact all-pairs
distances by one batched matrix product). In a larger image the window is N_S x N_S patch
positions centred on the reference; candidates outside the image are dropped (near the
border the window is smaller than in the reference package, which shifts it inside).

Profiles (the ``bm3d`` package's names): "np" is the paper's normal profile (N1 = 8,
N2^ht = 16, N2^wie = 32, N_step = 3, N_S = 39, tau_match^ht = 3000 as in the package
(the paper: 2500), tau_match^wie = 400, lambda_3D = 2.7); "lc" is the package's
low-complexity one (N_step^ht = 6, N_step^wie = 5, N_S = 25, N2^wie = 16).

:func:`bm3d_batch` returns the estimate and, on request, the block matching it used, which
can be passed back to denoise a nearby input with the same groups (D-AMP's divergence probe).

>>> rng = np.random.default_rng(0)
>>> clean = np.tile(np.linspace(0.2, 0.8, 33), (2, 33, 1))          # two 33 x 33 ramps
>>> noisy = clean + 0.1 * rng.standard_normal(clean.shape)
>>> out = bm3d_batch(noisy, 0.1)
>>> out.shape, bool(np.mean((out - clean) ** 2) < np.mean((noisy - clean) ** 2) / 4)
((2, 33, 33), True)
"""

from dataclasses import dataclass

import numpy as np

from cs_bench.errors import CSBenchError
from cs_bench.threads import torch_threads


@dataclass(frozen=True)
class Profile:
    """BM3D parameters (paper Sec. V / the package's profile of the same name)."""

    n1: int = 8  # patch side N1 (both steps)
    step_ht: int = 3  # N_step, step 1
    n2_ht: int = 16  # N2^ht: maximum group size, step 1
    window_ht: int = 39  # N_S, step 1 (patch positions per side)
    tau_ht: float = 3000.0  # tau_match^ht, on the 0-255 scale, per pixel (Eq. 5)
    lambda_3d: float = 2.7  # lambda_3D
    step_wie: int = 3
    n2_wie: int = 32
    window_wie: int = 39
    tau_wie: float = 400.0
    mu2: float = 1.0  # mu^2 of the Wiener shrinkage
    beta: float = 2.0  # Kaiser window parameter
    transform_ht: str = "bior1.5"  # 2-D transform of step 1 (bior1.5 or dct)
    #: noise allowance of the matching thresholds: a patch matches when its distance is at
    #: most tau_match + gamma sigma^2 (0-255 scale, per pixel). Two noisy copies of one patch
    #: are 2 sigma^2 apart on average, so gamma = 2 lets the threshold mean "similar content"
    #: at any sigma; the paper's fixed tau (gamma = 0, with the prefilter of its Eq. 6 above
    #: sigma 40) leaves groups of one patch at high sigma (sigma 150 on camera: 18.7 dB
    #: against the package's 21.8). The Wiener step matches on the basic estimate, whose
    #: residual noise is smaller: gamma_wie = 0.5. Both set on scikit-image's camera image
    #: against the package (scripts/validate_denoiser.py reports the effect).
    gamma: float = 2.0
    gamma_wie: float = 0.5


#: the filtering runs in float32 (torch): 2-3 x faster than float64 on this CPU; D-AMP's
#: divergence probe (a relative step of 1e-3) stays far above float32's 6e-8 resolution
DTYPE = None  # set on first use (torch is imported lazily)

PROFILES = {
    "np": Profile(),
    "lc": Profile(step_ht=6, window_ht=25, step_wie=5, n2_wie=16, window_wie=25),
}


def get_profile(name):
    """The profile ``name`` (np, lc)."""
    if isinstance(name, Profile):
        return name
    key = str(name).lower()
    if key not in PROFILES:
        raise CSBenchError(f"BM3D profile '{name}' unknown; valid: {', '.join(sorted(PROFILES))}")
    return PROFILES[key]


# ---------------------------------------------------------------------------- transforms
def dct_matrix(n):
    """Orthonormal DCT-II matrix (rows are the basis functions)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    A = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    A[0] /= np.sqrt(2.0)
    return A


def wavelet_matrix(n, name="bior1.5"):
    """Full dyadic decomposition of length-n signals (periodic), rows scaled to unit norm."""
    import warnings

    import pywt

    levels = int(np.log2(n))
    cols = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pywt warns that the filter is longer than the signal
        for e in np.eye(n):
            cols.append(np.concatenate(pywt.wavedec(e, name, mode="periodization", level=levels)))
    A = np.array(cols).T
    return A / np.linalg.norm(A, axis=1, keepdims=True)


def haar_matrix(s):
    """Orthonormal Haar transform of length s (a power of two), full decomposition."""
    H = np.ones((1, 1))
    while H.shape[0] < s:
        n = H.shape[0]
        H = np.vstack([np.kron(H, [1.0, 1.0]), np.kron(np.eye(n), [1.0, -1.0])]) / np.sqrt(2.0)
    return H


def transform_pair(name, n):
    """(A, A^-1) for the 2-D transform ``name`` (bior1.5 or dct) on n x n patches."""
    if name == "dct":
        A = dct_matrix(n)
        return A, A.T
    if name == "bior1.5":
        A = wavelet_matrix(n, "bior1.5")
        return A, np.linalg.inv(A)
    raise CSBenchError(f"BM3D 2-D transform '{name}' unknown; valid: bior1.5, dct")


def _t2d(P, A):
    """A X A^T for every n x n patch X of P (..., n, n), as one product with kron(A, A)."""
    n = A.shape[0]
    K = np.kron(A, A)  # vec(A X A^T) = kron(A, A) vec(X) for row-major vec
    return (P.reshape(-1, n * n) @ K.T).reshape(P.shape)


def _haar(X, Hs):
    """Hs applied along axis 1 of X (n x s x m), as one matrix product."""
    n, s, m = X.shape
    Y = Hs @ X.transpose(1, 0, 2).reshape(s, n * m)
    return Y.reshape(s, n, m).transpose(1, 0, 2)


# ---------------------------------------------------------------------------- patches
def _patches(Z, n1):
    """All n1 x n1 patches of every image: (B, P*Q, n1, n1), raster order of positions."""
    from numpy.lib.stride_tricks import sliding_window_view

    B, H, W = Z.shape
    V = sliding_window_view(Z, (n1, n1), axis=(1, 2))  # B x P x Q x n1 x n1
    return np.ascontiguousarray(V).reshape(B, (H - n1 + 1) * (W - n1 + 1), n1, n1)


def _refs(P, Q, step):
    """Flat positions of the reference patches: every ``step``, last row and column included."""
    rows = np.unique(np.r_[np.arange(0, P, step), P - 1])
    cols = np.unique(np.r_[np.arange(0, Q, step), Q - 1])
    return (rows[:, None] * Q + cols[None, :]).ravel(), rows, cols


def _match(Z, n1, step, window, n2, tau, whole=False):
    """Block matching (Eq. 5) on every image of Z (B x H x W); ``tau``: one per image.

    ``whole``: every position of the image is a candidate (else the N_S x N_S window, or
    the whole image when its patch grid fits in the window).

    Returns (refs (R,), idx (B, R, k) flat positions nearest first, size (B, R) group sizes:
    the largest power of two <= min(n2, number of positions with distance <= tau)).
    """
    import torch

    B, H, W = Z.shape
    P, Q = H - n1 + 1, W - n1 + 1
    refs, rows, cols = _refs(P, Q, step)
    cap = np.asarray(tau, dtype=np.float64) * n1 * n1  # total squared distance, Z scale
    cap = torch.from_numpy(np.broadcast_to(cap, (B,)).copy())[:, None, None]
    if whole or (P <= window and Q <= window):
        X = torch.from_numpy(_patches(Z, n1).reshape(B, P * Q, n1 * n1)).to(DTYPE)
        sq = (X * X).sum(-1)  # B x PQ
        Xr = X[:, refs]
        D = sq[:, refs, None] + sq[:, None, :] - 2 * torch.bmm(Xr, X.transpose(1, 2))
        D.clamp_(min=0)
        D[:, np.arange(len(refs)), refs] = -1.0  # the reference itself comes first
        k = min(n2, P * Q)
        dist, pos = torch.topk(D, k, dim=2, largest=False, sorted=True)
    else:
        dist, pos = _match_window(Z, n1, rows, cols, window, n2)
    count = (dist <= cap).sum(-1).clamp(min=1).numpy()
    size = (2 ** np.floor(np.log2(np.minimum(count, n2)))).astype(np.int64)
    return refs, pos.numpy(), size


def _match_window(Z, n1, rows, cols, window, n2, chunk=8):
    """Windowed block matching in large images: the N_S x N_S positions centred on each ref.

    Exact distances ||Z_xR||^2 + ||Z_x||^2 - 2 <Z_xR, Z_x> by batched matrix products: for
    each row of references, ``chunk`` neighbouring references share one candidate rectangle
    (their windows' union, clipped to the image) and the candidates outside a reference's
    own window are masked. Near the border the window is clipped (smaller), not shifted.
    """
    import torch

    B, H, W = Z.shape
    P, Q = H - n1 + 1, W - n1 + 1
    h = window // 2
    X = torch.from_numpy(_patches(Z, n1).reshape(B, P * Q, n1 * n1)).to(DTYPE)
    sq = (X * X).sum(-1)
    nr, nc = len(rows), len(cols)
    starts = np.arange(0, nc, chunk)
    span = min(Q, int(max(cols[min(j + chunk, nc) - 1] - cols[j] for j in starts)) + 2 * h + 1)
    Hc = min(P, 2 * h + 1)
    # candidate columns per chunk (n_chunks x span) and each chunk's references (padded)
    c_lo = np.clip(cols[starts] - h, 0, Q - span)
    cand_c = c_lo[:, None] + np.arange(span)[None, :]
    ref_j = np.minimum(starts[:, None] + np.arange(chunk)[None, :], nc - 1)  # n_chunks x chunk
    ref_c = cols[ref_j]
    col_ok = np.abs(cand_c[:, None, :] - ref_c[:, :, None]) <= h  # n_chunks x chunk x span
    k = min(n2, Hc * span)
    dist = torch.empty(B, nr, nc, k, dtype=DTYPE)
    pos = torch.empty(B, nr, nc, k, dtype=torch.int64)
    for i, r in enumerate(rows):
        r_lo = int(np.clip(r - h, 0, P - Hc))
        cand_r = r_lo + np.arange(Hc)
        row_ok = np.abs(cand_r - r) <= h
        cand = (cand_r[None, :, None] * Q + cand_c[:, None, :]).reshape(len(starts), -1)
        ok = torch.from_numpy((row_ok[None, None, :, None] & col_ok[:, :, None, :])
                              .reshape(len(starts), chunk, -1))
        self_ = torch.from_numpy(cand[:, None, :] == (r * Q + ref_c)[:, :, None])
        ci = torch.from_numpy(cand.reshape(-1))
        ri = torch.from_numpy(r * Q + ref_c.reshape(-1))
        C = X[:, ci].reshape(B * len(starts), -1, n1 * n1)
        R = X[:, ri].reshape(B * len(starts), chunk, n1 * n1)
        D = (sq[:, ri].reshape(B * len(starts), chunk, 1) + sq[:, ci].reshape(B * len(starts), 1, -1)
             - 2 * torch.bmm(R, C.transpose(1, 2))).clamp_(min=0)
        D = D.reshape(B, len(starts), chunk, -1)
        D.masked_fill_(~ok, float("inf")).masked_fill_(self_, -1.0)  # the reference first
        d, j = torch.topk(D, k, dim=3, largest=False, sorted=True)
        p = torch.from_numpy(cand)[None, :, None, :].expand(B, -1, chunk, -1)
        p = torch.gather(p, 3, j)
        # scatter the chunks back to reference columns (padded duplicates rewrite the last)
        dist[:, i, ref_j.reshape(-1)] = d.reshape(B, -1, k)
        pos[:, i, ref_j.reshape(-1)] = p.reshape(B, -1, k)
    return dist.reshape(B, nr * nc, k), pos.reshape(B, nr * nc, k)


# ---------------------------------------------------------------------------- filtering
def _groups(refs, idx, size, PQ):
    """For each group size s: (global positions (n, s), image index (n,), s)."""
    B, R, _ = idx.shape
    out = []
    for s in np.unique(size):
        b, r = np.nonzero(size == s)
        g = idx[b, r, :s] + (b * PQ)[:, None]
        out.append((g, b, int(s)))
    return out


def _aggregate(num, den, shape, n1, kaiser):
    """Fold per-position sums of weighted patch estimates into images (Eq. 9, 13)."""
    B, H, W = shape
    P, Q = H - n1 + 1, W - n1 + 1
    num = num.reshape(B, P, Q, n1, n1)
    den = den.reshape(B, P, Q)
    N = np.zeros(shape)
    Dn = np.zeros(shape)
    for u in range(n1):
        for v in range(n1):
            N[:, u:u + P, v:v + Q] += kaiser[u, v] * num[:, :, :, u, v]
            Dn[:, u:u + P, v:v + Q] += kaiser[u, v] * den
    return N, Dn


def _spectra(Z, A):
    """T2D of every n1 x n1 patch of every image of Z: (B*PQ) x n1^2 (torch, float32)."""
    import torch

    n = A.shape[0]
    P = torch.from_numpy(_patches(Z, n).reshape(-1, n * n)).to(DTYPE)
    return P @ torch.from_numpy(np.kron(A, A)).to(DTYPE).T


def _step(Z, C_noisy, C_pilot, groups, sigma, prof, A_inv, wiener, shape):
    """One BM3D step over all groups: hard thresholding (wiener=False) or Wiener filtering.

    A group of size s is gathered element-major (s x n x n1^2 for the n groups of that size)
    so that T1D is one matrix product. The inverse T2D is linear and the aggregation weights
    are scalars, so the weighted group estimates are summed per patch position in the
    transform domain and T2D^-1 is applied once per position, not once per group element.
    """
    import torch

    n1 = prof.n1
    m = n1 * n1
    num = torch.zeros(C_noisy.shape[0], m, dtype=DTYPE)
    den = torch.zeros(C_noisy.shape[0], dtype=DTYPE)
    sig = torch.from_numpy(sigma).to(DTYPE)
    for g, b, s in groups:
        n = g.shape[0]
        Hs = torch.from_numpy(haar_matrix(s)).to(DTYPE)
        gt = torch.from_numpy(np.ascontiguousarray(g.T).reshape(-1))  # element-major
        sb = sig[torch.from_numpy(b)]
        spec = (Hs @ C_noisy[gt].reshape(s, n * m)).reshape(s, n, m)  # T3D of the groups
        if not wiener:
            keep = spec.abs() > (prof.lambda_3d * sb)[None, :, None]  # Eq. 7-8
            spec.masked_fill_(~keep, 0.0)
            n_har = keep.view(s * n, m).sum(dim=1).view(s, n).sum(dim=0)
            w = torch.where(n_har >= 1, 1.0 / (sb * sb * n_har.clamp(min=1)),
                            torch.ones_like(sb))  # Eq. 10
        else:
            pilot = (Hs @ C_pilot[gt].reshape(s, n * m)).reshape(s, n, m)
            Wt = pilot.mul_(pilot)
            Wt = Wt.div_(Wt + prof.mu2 * (sb * sb)[None, :, None])  # Eq. 11
            spec.mul_(Wt)
            w = 1.0 / (sb * sb * Wt.mul_(Wt).sum(dim=(0, 2)).clamp(min=1e-12))  # Eq. 12
        est = (Hs.T @ spec.reshape(s, n * m)).reshape(s, n, m) * w[None, :, None]
        num.index_add_(0, gt, est.reshape(-1, m))
        den.index_add_(0, gt, w.repeat(s))
    K_inv = torch.from_numpy(np.kron(A_inv, A_inv)).to(DTYPE)
    num = (num @ K_inv.T).double().numpy()
    kaiser = np.outer(np.kaiser(n1, prof.beta), np.kaiser(n1, prof.beta))
    N, Dn = _aggregate(num, den.double().numpy(), shape, n1, kaiser)
    return np.where(Dn > 0, N / np.where(Dn > 0, Dn, 1.0), Z)


def bm3d_batch(Z, sigma, profile="np", stages="all", matches=None, return_matches=False,
               search="auto"):
    """BM3D of every image in Z (B x H x W, or one H x W image) at noise std ``sigma``.

    ``sigma``: a number or one per image (same scale as Z); an image with sigma <= 0 is
    returned unchanged. ``stages``: "all" (steps 1 and 2) or "ht" (step 1 only).
    ``matches``: the block matching returned by an earlier call with ``return_matches=True``
    (same shapes); it is reused instead of matching on this input. ``search``: "image"
    (every patch of the image is a candidate: the 33 x 33 blocks of block-scope D-AMP),
    "window" (N_S x N_S positions around the reference) or "auto" (image when the patch
    grid fits in the window).
    """
    import torch

    if search not in ("auto", "image", "window"):
        raise CSBenchError(f"BM3D search '{search}' unknown; valid: auto, image, window")
    whole = search == "image"
    global DTYPE
    DTYPE = torch.float32
    prof = get_profile(profile)
    if stages not in ("all", "ht"):
        raise CSBenchError(f"BM3D stages '{stages}' unknown; valid: all, ht")
    Z = np.asarray(Z, dtype=np.float64)
    single = Z.ndim == 2
    if single:
        Z = Z[None]
    if Z.ndim != 3 or min(Z.shape[1:]) < prof.n1:
        raise CSBenchError(f"BM3D needs images of at least {prof.n1} x {prof.n1} pixels, "
                           f"got shape {Z.shape}")
    B, H, W = Z.shape
    sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (B,)).copy()
    live = sig > 0
    sig_safe = np.where(live, sig, 1.0)
    n1 = prof.n1
    PQ = (H - n1 + 1) * (W - n1 + 1)
    with torch_threads(1):
        A, A_inv = transform_pair(prof.transform_ht, n1)
        C = _spectra(Z, A)
        if matches is None:
            # noisy patches: tau_match^ht + gamma sigma^2 (see Profile.gamma), per pixel on
            # the [0, 1] scale as are all matching thresholds here
            tau_b = prof.tau_ht + prof.gamma * (sig_safe * 255.0) ** 2
            m_ht = _match(Z, n1, prof.step_ht, prof.window_ht, prof.n2_ht, tau_b / 255.0 ** 2,
                          whole=whole)
        else:
            m_ht = matches[0]
        basic = _step(Z, C, None, _groups(*m_ht, PQ), sig_safe, prof, A_inv, False, Z.shape)
        out, m_wie = basic, None
        if stages == "all":
            if matches is None:
                m_wie = _match(basic, n1, prof.step_wie, prof.window_wie, prof.n2_wie,
                               (prof.tau_wie + prof.gamma_wie * (sig_safe * 255.0) ** 2) / 255.0 ** 2,
                               whole=whole)
            else:
                m_wie = matches[1]
            D, D_inv = transform_pair("dct", n1)
            Cz = _spectra(Z, D)
            Cb = _spectra(basic, D)
            out = _step(Z, Cz, Cb, _groups(*m_wie, PQ), sig_safe, prof, D_inv, True, Z.shape)
    out = np.where(live[:, None, None], out, Z)
    if single:
        out = out[0]
    return (out, (m_ht, m_wie)) if return_matches else out
