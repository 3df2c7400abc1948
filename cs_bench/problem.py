"""The block CS problem handed to every method.

A :class:`Problem` carries the measurements of all blocks of one image (``y``, an
n_blocks x M array, one row per block in raster order), the sensing matrix ``Phi``
(M x N, N = 1089), the ratio, the original and padded image shapes, and helpers to go
between blocks and images. Methods never see the ground truth.

>>> import numpy as np
>>> img = np.random.default_rng(0).random((40, 40))
>>> p = Problem.from_image(img, ratio=1.0)
>>> p.y.shape
(4, 1089)
>>> x = p.to_image(p.y @ p.Phi)   # Phi is orthogonal at ratio 1: Phi^T y = x
>>> bool(np.allclose(x, img))
True
"""

from dataclasses import dataclass

import numpy as np

from . import blocks as _blocks
from .operator import BlockCS
from .sensing import BLOCK, make_phi, measure


@dataclass
class Problem:
    y: np.ndarray  # n_blocks x M measurements, one row per block (raster order)
    Phi: np.ndarray  # M x N sensing matrix
    ratio: float
    image_shape: tuple  # (H, W) of the original image
    padded_shape: tuple  # (Hp, Wp), multiples of the block size
    block: int = BLOCK
    noise_sigma: float = 0.0
    seed: int = 0
    name: str = ""

    @classmethod
    def from_image(cls, img, ratio, Phi=None, phi_seed=0, noise_sigma=0.0, noise_seed=0,
                   padding="paper", name=""):
        """Measure a [0, 1] image block by block (the harness does this; handy in tests)."""
        if Phi is None:
            Phi = make_phi(ratio, phi_seed)
        X, pshape = _blocks.image_to_blocks(np.asarray(img, dtype=np.float64), BLOCK, padding)
        y = measure(X, Phi, noise_sigma, noise_seed)
        return cls(y=y, Phi=Phi, ratio=float(ratio), image_shape=tuple(np.shape(img)),
                   padded_shape=tuple(pshape), noise_sigma=noise_sigma, seed=phi_seed, name=name)

    # -- sizes -------------------------------------------------------------------------
    @property
    def M(self):
        return self.Phi.shape[0]

    @property
    def N(self):
        return self.Phi.shape[1]

    @property
    def n_blocks(self):
        return self.y.shape[0]

    # -- blocks <-> images -------------------------------------------------------------
    def to_image(self, X):
        """Blocks (n_blocks x N) -> cropped image (H x W)."""
        return _blocks.blocks_to_image(X, self.padded_shape, self.image_shape, self.block)

    def to_padded(self, X):
        """Blocks (n_blocks x N) -> padded image (Hp x Wp)."""
        return _blocks.from_blocks(X, self.padded_shape, self.block)

    def to_blocks(self, padded):
        """Padded image (Hp x Wp) -> blocks (n_blocks x N)."""
        return _blocks.to_blocks(np.asarray(padded), self.block)

    def crop(self, padded):
        """Padded image -> original size."""
        H, W = self.image_shape
        return np.asarray(padded)[:H, :W]

    # -- the measurement operator ----------------------------------------------------------
    @property
    def op(self):
        """The block CS operator of this problem (:class:`cs_bench.operator.BlockCS`)."""
        return BlockCS(self.Phi, self.padded_shape, self.block)

    def A(self, padded):
        """Measure a padded image: blocks -> n_blocks x M (image-scope methods)."""
        return self.op.A_image(padded)

    def At(self, y):
        """Adjoint of :meth:`A`: n_blocks x M -> padded image."""
        return self.op.At_image(y)
