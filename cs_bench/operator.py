"""The block CS measurement operator: one Phi (M x N, N = 33 x 33) applied to every block.

Every solver and network measures through this object. Block form (one row per vectorised
block, raster order, as :class:`~cs_bench.problem.Problem` holds ``y``):

* ``A(X) = X Phi^T`` (blocks -> measurements, y = Phi x per row),
* ``At(Y) = Y Phi`` (the adjoint),
* ``AtA(X) = X (Phi^T Phi)`` with Phi^T Phi formed once;

image form, for image-scope solvers (a padded image whose sides are multiples of the block):

* ``A_image(padded) = A(to_blocks(padded))``, ``At_image(Y) = from_blocks(At(Y))``.

Products run in the library and precision of Phi: numpy float64, or torch (any dtype and
device) via :meth:`BlockCS.torch`. ``<A x, y> = <x, At y>`` holds in both forms (tested).

>>> import numpy as np
>>> from cs_bench.sensing import make_phi
>>> op = BlockCS(make_phi(0.25), padded_shape=(66, 33))
>>> X = np.random.default_rng(0).random((2, 1089))
>>> op.A(X).shape, op.At(op.A(X)).shape, op.At_image(op.A(X)).shape
((2, 272), (2, 1089), (66, 33))
>>> bool(np.allclose(op.AtA(X), op.At(op.A(X))))
True
"""

import numpy as np

from . import blocks as _blocks
from .sensing import BLOCK


def _is_torch(x):
    return type(x).__module__.startswith("torch")


class BlockCS:
    """Phi applied block by block (see the module docstring)."""

    def __init__(self, Phi, padded_shape=None, block=BLOCK):
        self.Phi = Phi if _is_torch(Phi) else np.asarray(Phi, dtype=np.float64)
        self.padded_shape = tuple(padded_shape) if padded_shape is not None else None
        self.block = block
        self._PhiTPhi = None

    @property
    def M(self):
        return self.Phi.shape[0]

    @property
    def N(self):
        return self.Phi.shape[1]

    def torch(self, dtype=None, device="cpu"):
        """The same operator with Phi as a torch tensor (float64 unless ``dtype``)."""
        import torch

        P = self.Phi if _is_torch(self.Phi) else torch.from_numpy(np.array(self.Phi))
        return BlockCS(P.to(device=device, dtype=dtype or torch.float64), self.padded_shape,
                       self.block)

    # -- block form ------------------------------------------------------------------------
    def A(self, X):
        """Measure blocks: rows x N -> rows x M."""
        return X @ self.Phi.T

    def At(self, Y):
        """The adjoint: rows x M -> rows x N."""
        return Y @ self.Phi

    @property
    def PhiTPhi(self):
        if self._PhiTPhi is None:
            self._PhiTPhi = self.Phi.T @ self.Phi
        return self._PhiTPhi

    def AtA(self, X):
        """Phi^T Phi applied to every row (Phi^T Phi formed once)."""
        return X @ self.PhiTPhi

    # -- image form ------------------------------------------------------------------------
    def to_blocks(self, padded):
        return _blocks.to_blocks(padded, self.block)

    def from_blocks(self, X):
        if self.padded_shape is None:
            raise ValueError("this operator has no image shape (padded_shape)")
        return _blocks.from_blocks(X, self.padded_shape, self.block)

    def A_image(self, padded):
        """Measure a padded image: Hp x Wp -> n_blocks x M."""
        return self.A(self.to_blocks(np.asarray(padded)))

    def At_image(self, Y):
        """The adjoint of :meth:`A_image`: n_blocks x M -> Hp x Wp."""
        return self.from_blocks(self.At(np.asarray(Y)))
