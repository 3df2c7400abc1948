"""Reading images and the luminance used by CS papers.

Colour images are reduced to Y of YCbCr (ITU-R BT.601 full range, as OpenCV's
``cvtColor(..., COLOR_BGR2YCrCb)`` used by the ISTA-Net evaluation):
Y = 0.299 R + 0.587 G + 0.114 B on the 0-255 scale. Methods see pixels in [0, 1].

>>> rgb = np.zeros((2, 2, 3), np.uint8); rgb[..., 0] = 255
>>> round(float(luminance(rgb)[0, 0]), 3)
76.245
"""

from pathlib import Path

import numpy as np

from .errors import DataError

BT601 = np.array([0.299, 0.587, 0.114])


def luminance(rgb):
    """Y of YCbCr (BT.601) on the 0-255 scale from an H x W x 3 array on the 0-255 scale."""
    rgb = np.asarray(rgb, dtype=np.float64)
    return rgb[..., :3] @ BT601


def to_gray255(arr, name="image"):
    """Any decoded image array -> float64 H x W luminance on 0-255, read with its real range.

    bool: 0/255; uint8: as is; uint16: / 257 (the 16-bit scale); other integers and floats:
    as is when every value lies in [0, 255] (floats in [0, 1] times 255). Anything else (NaN,
    negative values, integers above 255 in a non-16-bit type, floats above 255) has no
    known scale and is refused, so no image is scored on a guessed range.
    """
    a = np.asarray(arr)
    if a.dtype == bool:
        a = a.astype(np.float64) * 255.0
    elif a.dtype == np.uint8:
        a = a.astype(np.float64)
    elif a.dtype == np.uint16:
        a = a.astype(np.float64) / 257.0
    elif np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
        if a.size and not np.all(np.isfinite(a)):
            raise DataError(f"{name}: the image holds NaN or Inf pixels")
        lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
        if lo < 0 or hi > 255:
            raise DataError(f"{name}: pixel values span [{lo:g}, {hi:g}] ({arr.dtype}), outside "
                            f"the 0-255 scale (or 0-1 for floats); give 8- or 16-bit images")
        if np.issubdtype(np.asarray(arr).dtype, np.floating) and hi <= 1.0:
            a = a * 255.0
    else:
        raise DataError(f"{name}: pixels of type {a.dtype} are not an image")
    if a.ndim == 3:
        if a.shape[2] == 1:
            a = a[..., 0]
        elif a.shape[2] in (3, 4):
            a = luminance(a[..., :3])
        else:
            raise DataError(f"{name}: shape {a.shape} is not a gray, RGB or RGBA image")
    if a.ndim != 2 or min(a.shape) < 1:
        raise DataError(f"{name}: not a 2-D image (shape {a.shape})")
    return a


def read_image(path):
    """Read an image file as float64 luminance on 0-255; one clear error if unreadable."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            try:
                with tifffile.TiffFile(path) as tif:
                    pages = len(tif.pages)
                    if pages > 1:
                        raise DataError(f"{path}: a TIFF of {pages} pages; give one image "
                                        f"per file")
                    arr = tif.asarray()
            except DataError:
                raise
            except Exception:
                with Image.open(path) as im:
                    arr = np.asarray(im.convert("RGB") if im.mode == "P" else im)
        else:
            with Image.open(path) as im:
                if im.mode == "P":
                    im = im.convert("RGB")
                elif im.mode in ("I;16", "I;16B", "I;16L"):
                    arr = np.asarray(im, dtype=np.uint16)
                    return to_gray255(arr, path.name)
                elif im.mode in ("LA", "PA"):
                    im = im.convert("L")
                elif im.mode == "CMYK":
                    im = im.convert("RGB")
                arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable image ({type(exc).__name__})") from None
    return to_gray255(arr, path.name)
