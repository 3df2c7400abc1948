"""Datasets: where the images are, their sha256 registry, download and verification.

Datasets: ``set11`` (the test set of ReconNet/ISTA-Net), ``t91`` (training), ``set5``,
``set14``, ``bsd100``, and ``skimage`` (grayscale images bundled with scikit-image; the
offline default). Every file of the public sets is checked against the sha256 registry in
``sha256sums.txt`` (a copy of the sums of the public files). A missing file is downloaded
from its public address with pooch, verified and cached; offline, a one-line error names
both fixes.

>>> sorted(DATASETS)
['bsd100', 'set11', 'set14', 'set5', 'skimage', 't91']
"""

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from .config import cache_dir, data_dirs
from .errors import DataError, unknown_name
from .files import sha256 as sha256_file
from .images import read_image, to_gray255

_ISTA = "https://raw.githubusercontent.com/jianzhangcs/ISTA-Net-PyTorch/master/data/Set11/"
_DCSCN = "https://raw.githubusercontent.com/jiny2001/dcscn-super-resolution/master/data/"


@dataclass(frozen=True)
class Dataset:
    name: str
    folder: str  # folder name under a data root
    url: str  # base address of the files
    role: str  # "test" or "train"
    description: str


DATASETS = {
    "set11": Dataset("set11", "Set11", _ISTA, "test", "11 grayscale test images (ReconNet, ISTA-Net)"),
    "t91": Dataset("t91", "T91", _DCSCN + "yang91/", "train", "91 training images (Yang et al.)"),
    "set5": Dataset("set5", "Set5", _DCSCN + "set5/", "test", "Set5 (Bevilacqua et al.)"),
    "set14": Dataset("set14", "Set14", _DCSCN + "set14/", "test", "Set14 (Zeyde et al.)"),
    "bsd100": Dataset("bsd100", "BSD100", _DCSCN + "bsd100/", "test", "BSDS300 test images"),
    "skimage": Dataset("skimage", "", "", "test", "grayscale images bundled with scikit-image (offline)"),
}

#: bundled scikit-image images used by the offline dataset (all grayscale, shipped in the wheel)
SKIMAGE_IMAGES = ("camera", "moon", "coins", "text", "page", "clock")


@dataclass(frozen=True)
class ImageRef:
    """One image of a dataset: a name, its sha256 and how to load it."""

    dataset: str
    name: str
    sha256: str
    path: str = ""  # file path for public sets; empty for bundled images

    def load(self):
        """The image as float64 luminance in [0, 1]."""
        if self.dataset == "skimage":
            import skimage.data

            return to_gray255(getattr(skimage.data, self.name)(), self.name) / 255.0
        return read_image(self.path) / 255.0


@lru_cache(maxsize=1)
def sha256_registry():
    """{'Set11/barbara.tif': sha256, ...} from the packaged sums file."""
    text = resources.files("cs_bench").joinpath("sha256sums.txt").read_text()
    reg = {}
    for line in text.splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            reg[rel.strip().lstrip("*")] = digest
    return reg


def get_dataset(name):
    key = str(name).lower()
    if key not in DATASETS:
        raise unknown_name("dataset", name, DATASETS)
    return DATASETS[key]


def files(name):
    """Relative paths (``Folder/file``) and sums of a public dataset, sorted."""
    ds = get_dataset(name)
    return sorted((rel, d) for rel, d in sha256_registry().items() if rel.split("/")[0] == ds.folder)


def _find(rel, data_dir=None):
    """First existing copy of ``rel`` under the data roots, or None."""
    for root in data_dirs(data_dir):
        p = root / rel
        if p.is_file():
            return p
    return None


def _download(ds, rel, digest):
    import pooch

    target = cache_dir() / "data" / ds.folder
    fname = rel.split("/", 1)[1]
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")  # no "Downloading ..." line: an error stays one line
    try:
        return Path(pooch.retrieve(ds.url + fname, known_hash=f"sha256:{digest}", fname=fname,
                                   path=target, progressbar=False))
    except ValueError as exc:  # pooch's hash mismatch
        raise DataError(f"{rel}: downloaded file fails its sha256 check ({exc})") from None
    except Exception:
        raise DataError(
            f"{rel} is missing and could not be downloaded: set --data-dir or CS_BENCH_DATA to a "
            f"folder holding {ds.folder}/, or connect to the network and run "
            f"'cs-bench data fetch {ds.name}'"
        ) from None
    finally:
        logger.setLevel(level)


def image_refs(name, data_dir=None, download=True, verify=True):
    """The images of a dataset as :class:`ImageRef` (sorted by name), verifying each sha256."""
    ds = get_dataset(name)
    if ds.name == "skimage":
        import skimage.data

        return [ImageRef("skimage", n, _array_sha(getattr(skimage.data, n)())) for n in SKIMAGE_IMAGES]
    refs = []
    for rel, digest in files(ds.name):
        path = _find(rel, data_dir)
        if path is None:
            if not download:
                raise DataError(f"{rel} is missing: set --data-dir or CS_BENCH_DATA, or run "
                                f"'cs-bench data fetch {ds.name}'")
            path = _download(ds, rel, digest)
        if verify:
            got = sha256_file(path)
            if got != digest:
                raise DataError(f"{path}: sha256 mismatch (expected {digest[:12]}..., got "
                                f"{got[:12]}...): the file is corrupt or tampered; delete it and "
                                f"fetch it again")
        refs.append(ImageRef(ds.name, Path(rel).stem, digest, str(path)))
    return refs


def _array_sha(arr):
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def load_images(name, data_dir=None):
    """[(image name, float64 [0,1] luminance array)] of a dataset."""
    return [(r.name, r.load()) for r in image_refs(name, data_dir)]


def image_folder_refs(folder):
    """Refs for every image file of a user's folder (dataset given as a path)."""
    folder = Path(folder)
    exts = {".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".pgm", ".ppm", ".gif"}
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in exts)
    if not paths:
        raise DataError(f"{folder}: no image files (.png, .bmp, .tif, .jpg, .pgm) in this folder")
    stems = [p.stem for p in paths]
    # an image is named by its stem; two files with one stem (a.png, a.tif) keep their suffix
    names = [p.name if stems.count(p.stem) > 1 else p.stem for p in paths]
    return [ImageRef(str(folder), n, sha256_file(p), str(p)) for n, p in zip(names, paths)]
