"""T91 validation PSNR of any installed weights: the measure every training run picks its
checkpoints by (the held-out T91 blocks of :mod:`~cs_bench.learned.trainset`, outputs
clipped, PSNR of the pooled MSE), applied to a zoo model or the authors' released one.

Each model measures with its own Phi: the harness's seeded Phi for ours, the release's
stored matrix for theirs. The authors trained on all 91 T91 images, our validation images
among them, so their figure is on blocks they saw in training; ours never trained on them.
A run's own record (``val_psnr`` in its weights' metadata) is this number for its best epoch.
"""

import numpy as np

from . import weights as wt
from .models import load_model
from .train import val_psnr
from .trainset import Recipe, load


def model_phi(entry):
    """The Phi (float64, M x N) weights ``entry`` measure with: their stored matrix, or the
    harness's seeded Phi at their ratio."""
    from cs_bench.sensing import make_phi

    meta = entry.meta()
    phi = meta.get("phi") or {}
    if phi.get("kind") == "stored":
        return wt.read_tensors(entry.path)["Phi"].double().numpy()
    return make_phi(float(meta["ratio"]), int(phi.get("seed", 0)))


def validation_psnr(name, recipe=None, device="cpu", data=None):
    """PSNR (dB) of weights ``name`` on the validation blocks of ``recipe`` (default: the
    T91 recipe every zoo run validates on); ``data`` reuses loaded blocks."""
    entry = wt.find(name)
    data = data if data is not None else load(recipe or Recipe())
    net, op = load_model(entry, model_phi(entry), device, allow_cross_ratio=False)
    return val_psnr(net, op, np.asarray(data.val), device)
