"""Inside the unrolled networks: what each phase adds (the paper's Fig. 4 idea, extended).

For a trained ISTA-Net / FISTA-Net (or any unrolled network) at one ratio, the image after
x(0) = Qinit y (Eq. 13) and after each phase k, with its PSNR, for one test image; and the
mean PSNR against k over the whole test set: where the phases earn their dB, and whether
FISTA-Net's momentum shows. Outputs ``results/phases.png`` and ``results/phases.md`` / ``.csv``.

Made by :func:`write_phases`; ``make tables`` calls :func:`table2_models` at 0.25 (our
ISTA-Net and FISTA-Net, and the authors' released ISTA-Net with the harness Phi when fetched).
"""

from pathlib import Path

import numpy as np
import pandas as pd

from ..export import atomic_write_text, write_csv


def phase_images(method, weights, img, ratio):
    """[x(0), x(1), ..., x(Np)] as images for ``img`` measured at ``ratio``."""
    import torch

    from ..learned import weights as wt
    from ..learned.models import load_model
    from ..problem import Problem
    from ..registry import get_method

    m = get_method(method, weights=weights)
    entry = wt.find(weights)
    meta = entry.meta()
    prob = Problem.from_image(img, ratio)
    Phi = m._run_phi(entry, meta, prob)
    net, op = load_model(entry, Phi, "cpu", allow_cross_ratio=False)
    y = torch.from_numpy(np.asarray(prob.y, dtype=np.float32))
    with torch.inference_mode():
        out = net(y, op)
        xs = [op.initial(y)] + list(out.phases)
    return [prob.to_image(x.double().numpy()) for x in xs]


def per_phase_psnr(models, imgs, ratio):
    """Long table: one row per (model label, image, phase) with the PSNR of x(phase)."""
    from ..metrics import psnr

    rows = []
    for label, (method, weights) in models.items():
        for name, img in imgs.items():
            for k, x in enumerate(phase_images(method, weights, img, ratio)):
                rows.append({"model": label, "weights": weights, "image": name, "phase": k,
                             "psnr": psnr(img, x)})
    return pd.DataFrame(rows)


def table2_models(ratio=0.25):
    """{label: (method, weights)}: the Table 2 unrolled models at ``ratio`` that exist."""
    from ..errors import CSBenchError
    from ..learned import release
    from ..learned import weights as wt
    from ..learned.spec import weights_name

    cands = {"ISTA-Net": ("ista-net", weights_name("ista-net", ratio)),
             "FISTA-Net": ("fista-net", weights_name("fista-net", ratio)),
             "ISTA-Net (authors' release, harness Phi)":
             ("ista-net", release.weights_name("ista-net", ratio, own_phi=False))}
    out = {}
    for label, (m, w) in cands.items():
        try:
            wt.find(w)
            out[label] = (m, w)
        except CSBenchError:
            pass
    return out


def write_phases(models, imgs, out, ratio=0.25, show="Parrots"):
    """``results/phases.png`` (the phases of image ``show`` for the first model, and mean
    PSNR against phase for every model) and ``phases.md`` / ``.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    df = per_phase_psnr(models, imgs, ratio)
    write_csv(df, out / "phases.csv")
    first = next(iter(models))
    show = show if show in imgs else next(iter(imgs))
    xs = phase_images(*models[first], imgs[show], ratio)
    n = len(xs)
    fig = plt.figure(figsize=(min(2.0 * n, 20), 5.2))
    grid = fig.add_gridspec(2, n)
    for k, x in enumerate(xs):
        ax = fig.add_subplot(grid[0, k])
        ax.imshow(np.clip(x, 0, 1), cmap="gray", vmin=0, vmax=1)
        p = df[(df.model == first) & (df.image == show) & (df.phase == k)].psnr.iloc[0]
        ax.set_title(f"{'x(0)' if k == 0 else f'phase {k}'}\n{p:.2f} dB", fontsize=7)
        ax.axis("off")
    ax = fig.add_subplot(grid[1, :])
    mean = df.groupby(["model", "phase"]).psnr.mean().reset_index()
    for label, g in mean.groupby("model", sort=False):
        ax.plot(g.phase, g.psnr, "o-", markersize=3, label=label)
    ax.set_xlabel("phase k (0: Qinit y)")
    ax.set_ylabel("mean PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle(f"Inside the network: {first} on {show} (top), every model over "
                 f"{len(imgs)} images (bottom), ratio {ratio:g}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "phases.png", dpi=100)
    plt.close(fig)
    piv = mean.pivot(index="phase", columns="model", values="psnr").reset_index()
    atomic_write_text(out / "phases.md", (
        f"# Inside the network: mean PSNR after each phase (ratio {ratio:g})\n\n"
        f"Mean PSNR (dB) over {len(imgs)} images of x(0) = Qinit y and of each phase's output "
        "x(k) (`phases.png`; per image in `phases.csv`). Models: "
        + ", ".join(f"{k} = `{w}`" for k, (_, w) in models.items()) + ".\n\n"
        + piv.to_markdown(index=False, floatfmt=[".0f"] + [".2f"] * (piv.shape[1] - 1))
        + "\n"))
    return df
