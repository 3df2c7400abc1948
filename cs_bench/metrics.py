"""PSNR and SSIM as the papers compute them.

The reconstruction is clipped to [0, 1], both images are put on the 0-255 scale, and PSNR
is taken per image (then averaged over images by the caller). SSIM is scikit-image's
with ``data_range=255``.

>>> x = np.full((8, 8), 0.5); round(psnr(x, x + 0.01), 2)
40.0
"""

import numpy as np


def psnr(reference, reconstruction):
    """PSNR in dB of a [0, 1] reconstruction against a [0, 1] reference."""
    ref = np.asarray(reference, dtype=np.float64) * 255.0
    rec = np.clip(np.asarray(reconstruction, dtype=np.float64), 0.0, 1.0) * 255.0
    mse = np.mean((ref - rec) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0**2 / mse))


def ssim(reference, reconstruction):
    """SSIM (scikit-image, data_range 255) on the 0-255 scale, after clipping."""
    from skimage.metrics import structural_similarity

    ref = np.asarray(reference, dtype=np.float64) * 255.0
    rec = np.clip(np.asarray(reconstruction, dtype=np.float64), 0.0, 1.0) * 255.0
    return float(structural_similarity(ref, rec, data_range=255.0))
