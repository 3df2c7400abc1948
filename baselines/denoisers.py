"""Gaussian denoisers for D-AMP: ``denoise(x, sigma)``.

Scale: every denoiser works on the harness's **[0, 1] pixel scale**; ``x`` is a 2-D float
array (values may leave [0, 1] slightly, as D-AMP's pseudo-data ``x + A^T z`` does) and
``sigma`` is the standard deviation of the white Gaussian noise in the same units
(sigma = 25/255 ~ 0.098 is "sigma 25" on the 0-255 scale). The output is not clipped.
A sigma <= 0 returns a copy of ``x`` (the limit of every denoiser here as sigma -> 0).

* ``bm3d``: BM3D (Dabov et al. 2007) from the optional PyPI package ``bm3d`` (non-commercial
  licence, closed binary; install with ``pip install 'cs-bench[bm3d]'``). The package's
  thresholds are set for images on the [0, 1] scale.
* ``bm3d-batch``: the same BM3D written here (:mod:`cs_bench.baselines.bm3d_batch`, numpy +
  torch, no optional package), which denoises a stack of images (all 33 x 33 blocks of a
  D-AMP problem) in one call; validated against the package by
  ``scripts/validate_denoiser.py`` (``results/denoiser_validation.md``).
* ``nlm``, ``tv``, ``wavelet``: scikit-image's ``denoise_nl_means``, ``denoise_tv_chambolle``
  and ``denoise_wavelet``, always available.

The constants that tie a scikit-image denoiser's strength to sigma (``NLM_H``, ``TV_WEIGHT``,
``WAVELET``) are not given by the D-AMP paper; they were chosen on T91 only (never Set11)
by ``scripts/tune_damp.py --denoisers``: the value with the lowest mean squared error when
denoising T91 images with white Gaussian noise of sigma 5, 10, 20, 40 and 80 (0-255 scale),
the noise levels D-AMP's iterations go through.

``Denoiser.pair(x, x2, sigma)`` denoises two nearby inputs (D-AMP's Monte-Carlo divergence
probe); BM3D reuses the block matching of ``x`` for ``x2`` (see :class:`BM3D`).

>>> import numpy as np
>>> x = np.full((16, 16), 0.5)
>>> noisy = x + 0.1 * np.random.default_rng(0).standard_normal(x.shape)
>>> d = get_denoiser("tv")
>>> bool(np.mean((d(noisy, 0.1) - x) ** 2) < np.mean((noisy - x) ** 2))
True
"""

import numpy as np

from cs_bench.errors import CSBenchError

#: nlm: h = NLM_H * sigma (scikit-image's fast mode with the noise sigma given)
NLM_H = 1.0
NLM_PATCH = 5  # patch side
NLM_DISTANCE = 6  # search half-width
#: tv: Chambolle's weight = TV_WEIGHT * sigma
TV_WEIGHT = 1.0
#: tv: a fixed number of Chambolle iterations (no early stop), so D is a smooth function of
#: x and the divergence probe measures the filter rather than a change of the stopping step
TV_ITERS = 50
#: wavelet: BayesShrink soft thresholding in this wavelet
WAVELET = "sym4"

BM3D_INSTALL = "pip install 'cs-bench[bm3d]' (or: make install)"


class Denoiser:
    """A denoiser ``D_sigma``: ``D(x, sigma)`` -> denoised 2-D array ([0, 1] scale)."""

    name = ""

    def __call__(self, x, sigma):
        x = np.asarray(x, dtype=np.float64)
        if not sigma > 0:
            return x.copy()
        return self.denoise(x, float(sigma))

    def denoise(self, x, sigma):  # pragma: no cover - interface
        raise NotImplementedError

    def pair(self, x, x2, sigma):
        """(D(x), D(x2)) for two nearby inputs; the base class simply calls D twice."""
        return self(x, sigma), self(x2, sigma)


class NLM(Denoiser):
    """Non-local means (scikit-image, fast mode), h = NLM_H * sigma."""

    name = "nlm"

    def denoise(self, x, sigma):
        from skimage.restoration import denoise_nl_means

        return denoise_nl_means(x, patch_size=NLM_PATCH, patch_distance=NLM_DISTANCE,
                                h=NLM_H * sigma, sigma=sigma, fast_mode=True,
                                preserve_range=True)


class TV(Denoiser):
    """Total-variation denoising (Chambolle's projection, scikit-image), weight TV_WEIGHT * sigma."""

    name = "tv"

    def denoise(self, x, sigma):
        from skimage.restoration import denoise_tv_chambolle

        return denoise_tv_chambolle(x, weight=TV_WEIGHT * sigma, eps=0.0, max_num_iter=TV_ITERS)


class Wavelet(Denoiser):
    """Wavelet soft thresholding with BayesShrink thresholds (scikit-image)."""

    name = "wavelet"

    def denoise(self, x, sigma):
        from skimage.restoration import denoise_wavelet

        import pywt

        # full depth: scikit-image's default (3 levels short of it) leaves the coarse band,
        # noise included, untouched, which stalls D-AMP at large sigma
        levels = max(1, pywt.dwt_max_level(min(x.shape), pywt.Wavelet(WAVELET).dec_len))
        return denoise_wavelet(x, sigma=sigma, wavelet=WAVELET, mode="soft",
                               wavelet_levels=levels, method="BayesShrink", rescale_sigma=True)


def import_bm3d():
    """The ``bm3d`` module, or a one-line CSBenchError telling how to install it."""
    try:
        import bm3d
    except ImportError:
        raise CSBenchError(f"the BM3D denoiser needs the optional package 'bm3d': "
                           f"{BM3D_INSTALL}") from None
    return bm3d


class BM3D(Denoiser):
    """BM3D from the ``bm3d`` package (white noise of std ``sigma``).

    ``stages``: ``"all"`` (hard thresholding then Wiener filtering, the full BM3D) or
    ``"ht"`` (the hard-thresholding stage only, about 40 % cheaper). ``profile``: the
    package's profile name ("np" is the authors' normal profile, "lc" their low-complexity
    one).

    :meth:`pair` computes the block matching once, on ``x``, and reuses it for ``x2``. For
    D-AMP's divergence probe (``x2 = x + eps b`` with eps ~ max|x| / 1000) this is the
    derivative BM3D has almost everywhere: its grouping is piecewise constant in the input,
    so with the matching held fixed the finite difference measures the filter's Jacobian
    instead of rare jumps of the grouping, and the second call skips the matching.
    """

    name = "bm3d"

    def __init__(self, stages="all", profile="np"):
        if stages not in ("all", "ht"):
            raise CSBenchError(f"BM3D stages '{stages}' unknown; valid: all, ht")
        self.stages = stages
        self.profile = profile
        self.bm3d = import_bm3d()

    def _args(self):
        b = self.bm3d
        stage = b.BM3DStages.ALL_STAGES if self.stages == "all" else b.BM3DStages.HARD_THRESHOLDING
        profiles = {"np": b.BM3DProfile, "lc": b.profiles.BM3DProfileLC}
        if self.profile not in profiles:
            raise CSBenchError(f"BM3D profile '{self.profile}' unknown; valid: lc, np")
        profile = profiles[self.profile]()
        profile.num_threads = 1  # the package: more threads may change results run to run
        return stage, profile

    def denoise(self, x, sigma):
        stage, profile = self._args()
        return np.asarray(self.bm3d.bm3d(x, sigma, profile=profile, stage_arg=stage))

    def pair(self, x, x2, sigma):
        x = np.asarray(x, dtype=np.float64)
        if not sigma > 0:
            return x.copy(), np.asarray(x2, dtype=np.float64).copy()
        stage, profile = self._args()
        keep = (True, self.stages == "all")
        d1, matches = self.bm3d.bm3d(x, sigma, profile=profile, stage_arg=stage,
                                     blockmatches=keep)
        d2 = self.bm3d.bm3d(np.asarray(x2, dtype=np.float64), sigma, profile=profile,
                            stage_arg=stage, blockmatches=matches)
        if isinstance(d2, tuple):  # the package returns matches again when asked to reuse
            d2 = d2[0]
        return np.asarray(d1), np.asarray(d2)


class BM3DBatch(Denoiser):
    """BM3D written here in numpy/torch (:mod:`cs_bench.baselines.bm3d_batch`), batched.

    Same stages and profiles as :class:`BM3D` (the package); it needs no optional package,
    and :meth:`batch` / :meth:`pair_batch` denoise a stack of images (D-AMP's 33 x 33 blocks)
    in one call, each at its own sigma. :meth:`pair_batch` reuses the block matching of the
    first input for the second, as :meth:`BM3D.pair` does. ``search="image"`` makes every
    patch of an image a candidate (the block is the search window), "window" the N_S x N_S
    window around the reference, "auto" picks the first when the image fits the window.
    """

    name = "bm3d-batch"

    def __init__(self, stages="all", profile="np", search="auto"):
        from .bm3d_batch import get_profile

        self.search = search  # "image" for 33 x 33 blocks: the block is the search window
        if stages not in ("all", "ht"):
            raise CSBenchError(f"BM3D stages '{stages}' unknown; valid: all, ht")
        self.stages = stages
        self.profile = get_profile(profile)

    def denoise(self, x, sigma):
        return self.batch(x[None], np.array([sigma]))[0]

    def pair(self, x, x2, sigma):
        x = np.asarray(x, dtype=np.float64)
        s = np.array([float(sigma)])
        d1, d2 = self.pair_batch(x[None], np.asarray(x2, dtype=np.float64)[None], s)
        return d1[0], d2[0]

    def batch(self, X, sigma):
        """D(X_b, sigma_b) for every image X_b of the stack X (B x H x W)."""
        from .bm3d_batch import bm3d_batch

        return bm3d_batch(X, sigma, profile=self.profile, stages=self.stages, search=self.search)

    def pair_batch(self, X, X2, sigma):
        """(D(X_b), D(X2_b)) for every b, the matching of X_b reused for X2_b."""
        from .bm3d_batch import bm3d_batch

        d1, m = bm3d_batch(X, sigma, profile=self.profile, stages=self.stages,
                           return_matches=True, search=self.search)
        d2 = bm3d_batch(X2, sigma, profile=self.profile, stages=self.stages, matches=m,
                        search=self.search)
        return d1, d2


DENOISERS = {"bm3d": BM3D, "bm3d-batch": BM3DBatch, "nlm": NLM, "tv": TV,
             "wavelet": Wavelet}


def get_denoiser(name, **options):
    """The denoiser ``name`` (bm3d, nlm, tv, wavelet); options go to its constructor."""
    key = str(name).lower()
    if key not in DENOISERS:
        raise CSBenchError(f"unknown denoiser '{name}'; valid: {', '.join(sorted(DENOISERS))}")
    return DENOISERS[key](**options)
