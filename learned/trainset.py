"""Training and validation blocks, built once from a recipe and cached.

The paper trains on 88,912 random 33 x 33 blocks of the luminance of the 91 images of
Yang et al. (T91). Our recipe (``source="t91"``):

* ``val_images`` (default 5) T91 images, drawn with the seed, are held out entirely; they
  give ``n_val`` validation blocks, used only to pick the checkpoint and report progress.
  Set11 (the test set) is never touched.
* The other images give ``n_blocks`` training blocks, **stratified proportionally to area**:
  image j gets a share of the blocks proportional to its number of block positions
  (H-32)(W-32) (largest-remainder rounding), and its positions are drawn uniformly without
  replacement. This is what "random blocks from the 91 images" means for the pixels (every
  block position of the collection is equally likely) while the stratification fixes the
  per-image counts; equal counts per image would repeat the small images' blocks many
  times over (the smallest T91 image, 78 x 78, has only 2116 positions).
* Pixels are luminance in [0, 1] (BT.601, :func:`cs_bench.images.luminance`), float32.

``source="synthetic"`` makes smooth random blocks (cosines plus an edge) from the seed
alone: used by the tests and by anyone without the data.

The arrays go to ``cache_dir()/trainsets/<source>-n<n>-v<n_val>-s<seed>-<hash>*.npy``
where ``<hash>`` is the sha256 of the recipe (and, for T91, of every image's sha256), so a
changed recipe never reuses a stale file. Each file is written to a temporary name and
renamed (atomic). Besides the blocks we cache R = sum_i x_i x_i^T of the training blocks,
from which :func:`cs_bench.learned.qinit.qinit` gives Qinit for any Phi.

>>> ts = load(Recipe(source="synthetic", n_blocks=64, n_val=16, seed=1), cache=False)
>>> ts.train.shape, ts.val.shape, ts.train.dtype
((64, 1089), (16, 1089), dtype('float32'))
>>> bool(ts.train.min() >= 0 and ts.train.max() <= 1)
True
"""

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

from cs_bench.config import cache_dir
from cs_bench.errors import CSBenchError
from cs_bench.files import atomic_write, atomic_write_text
from cs_bench.sensing import BLOCK, N

from .qinit import second_moment

SOURCES = ("t91", "synthetic")
RECIPE_VERSION = 1


@dataclass(frozen=True)
class Recipe:
    """How the training blocks are made (every field goes into the cache key)."""

    source: str = "t91"
    n_blocks: int = 88912
    n_val: int = 2048
    val_images: int = 5
    seed: int = 0
    stratify: str = "area"
    version: int = RECIPE_VERSION

    def check(self):
        if self.source not in SOURCES:
            raise CSBenchError(f"unknown training source '{self.source}'; valid: "
                               f"{', '.join(SOURCES)}")
        if self.n_blocks < 1 or self.n_val < 1:
            raise CSBenchError("the training set needs at least one training and one "
                               "validation block")
        if self.stratify != "area":
            raise CSBenchError(f"unknown stratification '{self.stratify}'; valid: area")
        return self

    def to_dict(self):
        return asdict(self)

    def key(self):
        """sha256 (hex, 12 characters) of the recipe and of the source images' sums."""
        d = self.to_dict()
        if self.source == "t91":
            from cs_bench.data import files

            d["images"] = [digest for _, digest in files("t91")]
        text = json.dumps(d, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def stem(self):
        return f"{self.source}-n{self.n_blocks}-v{self.n_val}-s{self.seed}-{self.key()}"


@dataclass
class TrainSet:
    train: np.ndarray  # n_blocks x N float32, rows are row-major blocks
    val: np.ndarray  # n_val x N float32
    moment: np.ndarray  # N x N float64, sum of x x^T over the training blocks
    recipe: Recipe
    key: str
    val_names: tuple = ()


def _split_counts(weights, total):
    """Integer counts proportional to ``weights`` summing to ``total`` (largest remainder)."""
    w = np.asarray(weights, dtype=np.float64)
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(np.int64)
    rest = total - counts.sum()
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[:rest]] += 1
    return counts


def _sample_blocks(images, total, rng):
    """``total`` blocks from ``images`` stratified by area, positions without replacement."""
    positions = [(h - BLOCK + 1) * (w - BLOCK + 1) for h, w in (im.shape for im in images)]
    counts = _split_counts(positions, total)
    out = np.empty((total, N), dtype=np.float32)
    row = 0
    for img, npos, k in zip(images, positions, counts):
        if k == 0:
            continue
        win = np.lib.stride_tricks.sliding_window_view(img, (BLOCK, BLOCK))
        pick = rng.choice(npos, size=k, replace=bool(k > npos))
        i, j = np.divmod(pick, win.shape[1])
        out[row:row + k] = win[i, j].reshape(k, N)
        row += k
    return out


def _t91(recipe, data_dir=None):
    from cs_bench.data import image_refs

    refs = image_refs("t91", data_dir)
    names = [r.name for r in refs]
    if recipe.val_images >= len(names):
        raise CSBenchError(f"val_images={recipe.val_images} leaves no T91 image for training")
    held = set(np.random.default_rng([recipe.seed, 1]).choice(len(names), recipe.val_images,
                                                              replace=False).tolist())
    train_imgs = [r.load() for i, r in enumerate(refs) if i not in held]
    val_imgs = [r.load() for i, r in enumerate(refs) if i in held]
    rng = np.random.default_rng([recipe.seed, 2])
    train = _sample_blocks(train_imgs, recipe.n_blocks, rng)
    val = _sample_blocks(val_imgs, recipe.n_val, rng)
    return train, val, tuple(names[i] for i in sorted(held))


def synthetic_blocks(n, rng):
    """``n`` smooth random blocks in [0, 1]: a few low-frequency cosines plus one edge."""
    t = (np.arange(BLOCK) + 0.5) / BLOCK
    yy, xx = np.meshgrid(t, t, indexing="ij")
    out = rng.uniform(0.2, 0.8, size=(n, 1, 1)) * np.ones((1, BLOCK, BLOCK))
    for _ in range(3):
        f = rng.uniform(0.0, 3.0, size=(n, 2, 1, 1))
        phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1))
        amp = rng.uniform(0.0, 0.15, size=(n, 1, 1))
        out += amp * np.cos(2 * np.pi * (f[:, 0] * yy + f[:, 1] * xx) + phase)
    angle = rng.uniform(0, np.pi, size=(n, 1, 1))
    offset = rng.uniform(-0.4, 0.4, size=(n, 1, 1))
    step = rng.uniform(-0.3, 0.3, size=(n, 1, 1))
    edge = (np.cos(angle) * (yy - 0.5) + np.sin(angle) * (xx - 0.5)) > offset
    out += step * edge
    return np.clip(out, 0.0, 1.0).reshape(n, N).astype(np.float32)


def build(recipe, data_dir=None):
    """Make the blocks of ``recipe`` (no cache)."""
    recipe.check()
    if recipe.source == "t91":
        train, val, val_names = _t91(recipe, data_dir)
    else:
        rng = np.random.default_rng([recipe.seed, 3])
        train = synthetic_blocks(recipe.n_blocks, rng)
        val = synthetic_blocks(recipe.n_val, rng)
        val_names = ()
    return TrainSet(train, val, second_moment(train), recipe, recipe.key(), val_names)


def _atomic_save(path, arr):
    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, arr, allow_pickle=False)

    atomic_write(path, write)


def folder():
    return cache_dir() / "trainsets"


def paths(recipe):
    stem = recipe.stem()
    base = folder()
    return {part: base / f"{stem}{suffix}" for part, suffix in
            (("train", ".npy"), ("val", "-val.npy"), ("moment", "-moment.npy"),
             ("recipe", "-recipe.json"))}


def load(recipe=None, data_dir=None, cache=True):
    """The :class:`TrainSet` of ``recipe`` (default: the paper's T91 recipe), cached."""
    recipe = (recipe or Recipe()).check()
    if not cache:
        return build(recipe, data_dir)
    p = paths(recipe)
    if all(p[k].is_file() for k in p):
        info = json.loads(p["recipe"].read_text())
        try:
            return TrainSet(np.load(p["train"], allow_pickle=False),
                            np.load(p["val"], allow_pickle=False),
                            np.load(p["moment"], allow_pickle=False), recipe, recipe.key(),
                            tuple(info.get("val_images_held_out", ())))
        except (OSError, ValueError):
            pass  # a damaged cache file: rebuild it
    ts = build(recipe, data_dir)
    _atomic_save(p["train"], ts.train)
    _atomic_save(p["val"], ts.val)
    _atomic_save(p["moment"], ts.moment)
    atomic_write_text(p["recipe"], json.dumps({**recipe.to_dict(), "key": ts.key,
                                          "val_images_held_out": list(ts.val_names)}, indent=1))
    return ts


def moment(recipe, data_dir=None):
    """Only R of ``recipe`` (for Qinit at another ratio), from the cache when possible."""
    recipe = recipe.check()
    p = paths(recipe)
    if p["moment"].is_file():
        try:
            return np.load(p["moment"], allow_pickle=False)
        except (OSError, ValueError):
            pass
    return load(recipe, data_dir).moment
