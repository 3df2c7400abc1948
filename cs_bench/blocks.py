"""Images to 33 x 33 blocks and back.

Default padding ("paper") adds ``B - (size mod B)`` zero rows/columns on the bottom/right,
which adds a whole block when the size is already a multiple of B: that is what the
ISTA-Net and ReconNet evaluation code do, so numbers stay comparable. ``"minimal"`` pads
only up to the next multiple of B.

>>> img = np.arange(40 * 50, dtype=float).reshape(40, 50)
>>> X, padded = image_to_blocks(img)
>>> X.shape, padded
((4, 1089), (66, 66))
>>> bool(np.array_equal(blocks_to_image(X, padded, img.shape), img))
True
"""

import numpy as np

from .errors import CSBenchError
from .sensing import BLOCK

PADDINGS = ("paper", "minimal")


def padded_shape(shape, block=BLOCK, padding="paper"):
    """Shape of the zero-padded image for ``shape`` (H, W)."""
    if padding not in PADDINGS:
        raise CSBenchError(f"unknown padding '{padding}'; valid: {', '.join(PADDINGS)}")
    out = []
    for s in shape:
        if padding == "paper":
            out.append(s + block - s % block)
        else:
            out.append(-(-s // block) * block)
    return tuple(out)


def pad(img, block=BLOCK, padding="paper"):
    """Zero-pad a 2-D image on the right and bottom."""
    H, W = img.shape
    Hp, Wp = padded_shape(img.shape, block, padding)
    return np.pad(img, ((0, Hp - H), (0, Wp - W)))


def to_blocks(padded, block=BLOCK):
    """Cut a padded image into blocks in raster order; each row is one block, row-major."""
    Hp, Wp = padded.shape
    b = block
    return (
        padded.reshape(Hp // b, b, Wp // b, b).transpose(0, 2, 1, 3).reshape(-1, b * b)
    )


def from_blocks(X, padded_shape, block=BLOCK):
    """Inverse of :func:`to_blocks` (no crop)."""
    Hp, Wp = padded_shape
    b = block
    X = np.asarray(X)
    return X.reshape(Hp // b, Wp // b, b, b).transpose(0, 2, 1, 3).reshape(Hp, Wp)


def image_to_blocks(img, block=BLOCK, padding="paper"):
    """Pad ``img`` and cut it into blocks; returns (blocks n x B^2, padded shape)."""
    P = pad(np.asarray(img), block, padding)
    return to_blocks(P, block), P.shape


def blocks_to_image(X, padded_shape, image_shape, block=BLOCK):
    """Reassemble blocks into the padded image and crop to ``image_shape``."""
    H, W = image_shape
    return from_blocks(X, padded_shape, block)[:H, :W]
