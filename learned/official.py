"""Import and export of the authors' ISTA-Net-PyTorch release (jianzhangcs/ISTA-Net-PyTorch).

Their layout, per ratio RR (percent):

* ``net_params_<epoch>.pkl``: ``torch.save`` of the state dict of ``nn.DataParallel(ISTANet)``:
  ``module.fcs.{k}.lambda_step`` (1,), ``module.fcs.{k}.soft_thr`` (1,),
  ``module.fcs.{k}.conv1_forward`` (32,1,3,3), ``conv2_forward`` (32,32,3,3),
  ``conv1_backward`` (32,32,3,3), ``conv2_backward`` (1,32,3,3), k = 0..Np-1;
* ``phi_0_<RR>_1089.mat``: ``phi``, M x 1089;
* ``Initialization_Matrix_<RR>.mat``: ``Qinit``, 1089 x M;

blocks vectorised row-major, x(0) = Qinit y, as ours. The mapping is one to one:
lambda_step = rho(k), soft_thr = theta(k), conv1/2_forward = F(k), conv1/2_backward = G(k).

ISTA-Net+ checkpoints have, per phase, ``conv_D`` (32,1,3,3), ``conv1/2_forward``,
``conv1/2_backward`` (32,32,3,3 each) and ``conv_G`` (1,32,3,3): D(k), F(k), G~(k), G(k) of
:class:`~cs_bench.learned.nets.ISTANetPlus`. The reader tells the two apart by their keys.

Import reads the .pkl with ``torch.load(weights_only=True)`` (no unpickling of code),
keeps their Phi and Qinit (the weights then carry their own Phi, and the harness method
accepts only problems measured with it: their Phi is not the harness's seeded Phi), and
installs the result in the user weights folder. Their code trains with the symmetry term
on each phase's input, so the metadata says ``sym_input="phase_input"``.

>>> official_names(0.25, 200)
('net_params_200.pkl', 'phi_0_25_1089.mat', 'Initialization_Matrix_25.mat')
"""

import hashlib
import re
from pathlib import Path

import numpy as np
import torch

from cs_bench.errors import CSBenchError, WeightsError
from cs_bench.files import sha256
from cs_bench.sensing import PAPER_M, N, load_phi, make_phi

from . import weights as wt

#: our Phase parameter <- their BasicBlock parameter
OURS_FROM_THEIRS = {"rho": "lambda_step", "theta": "soft_thr", "F1": "conv1_forward",
                    "F2": "conv2_forward", "G1": "conv1_backward", "G2": "conv2_backward"}


#: ISTA-Net+ (PlusPhase) parameter <- their ISTA-Net+ BasicBlock parameter
PLUS_FROM_THEIRS = {"rho": "lambda_step", "theta": "soft_thr", "D": "conv_D",
                    "F1": "conv1_forward", "F2": "conv2_forward", "Gt1": "conv1_backward",
                    "Gt2": "conv2_backward", "G": "conv_G"}


def _shapes(arch, nf):
    if arch == "ista-net-plus":
        return {"lambda_step": (1,), "soft_thr": (1,), "conv_D": (nf, 1, 3, 3),
                "conv1_forward": (nf, nf, 3, 3), "conv2_forward": (nf, nf, 3, 3),
                "conv1_backward": (nf, nf, 3, 3), "conv2_backward": (nf, nf, 3, 3),
                "conv_G": (1, nf, 3, 3)}
    return {"lambda_step": (1,), "soft_thr": (1,), "conv1_forward": (nf, 1, 3, 3),
            "conv2_forward": (nf, nf, 3, 3), "conv1_backward": (nf, nf, 3, 3),
            "conv2_backward": (1, nf, 3, 3)}


def official_names(ratio, epoch=200):
    rr = round(float(ratio) * 100)
    return f"net_params_{int(epoch)}.pkl", f"phi_0_{rr}_1089.mat", f"Initialization_Matrix_{rr}.mat"


def ratio_from_m(m):
    """The paper's ratio for M (272 -> 0.25), else M / 1089."""
    for r, mm in PAPER_M.items():
        if mm == m:
            return r
    return m / N


def read_checkpoint(path):
    """Their state dict as {our tensor name: float32 tensor}, the phase count, Nf and the arch
    ("ista-net" or "ista-net-plus")."""
    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CSBenchError(f"{path}: no such checkpoint file") from None
    except Exception as exc:  # noqa: BLE001 - any reader failure means an unusable file
        raise WeightsError(f"{path}: not a loadable tensor-only checkpoint "
                           f"({type(exc).__name__}); only plain state dicts are accepted") from None
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise WeightsError(f"{path}: not a state dict of tensors")
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    arch = "ista-net-plus" if any(k.endswith(".conv_D") for k in sd) else "ista-net"
    mapping = PLUS_FROM_THEIRS if arch == "ista-net-plus" else OURS_FROM_THEIRS
    pat = re.compile(r"^fcs\.(\d+)\.(\w+)$")
    phases = {}
    for k, v in sd.items():
        m = pat.match(k)
        if not m or m.group(2) not in mapping.values():
            raise WeightsError(f"{path}: unexpected key '{k}' for an {arch} checkpoint")
        phases.setdefault(int(m.group(1)), {})[m.group(2)] = v
    n = len(phases)
    if n == 0 or sorted(phases) != list(range(n)):
        raise WeightsError(f"{path}: phases {sorted(phases)} are not 0..Np-1")
    out = {}
    nf = None
    for k in range(n):
        ph = phases[k]
        missing = [t for t in mapping.values() if t not in ph]
        if missing:
            raise WeightsError(f"{path}: phase {k} lacks {', '.join(missing)}")
        nf = ph["conv1_forward"].shape[0]
        shapes = _shapes(arch, nf)
        for ours, theirs in mapping.items():
            t = ph[theirs]
            if tuple(t.shape) != shapes[theirs]:
                raise WeightsError(f"{path}: fcs.{k}.{theirs} has shape {tuple(t.shape)}, "
                                   f"expected {shapes[theirs]}")
            out[f"layers.{k}.{ours}"] = t.detach().float().clone()
    return out, n, nf, arch


def _read_qinit(path, m):
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path))
    except FileNotFoundError:
        raise CSBenchError(f"{path}: no such file") from None
    except Exception as exc:  # noqa: BLE001 - any reader failure means an unusable file
        raise CSBenchError(f"{path}: cannot read the .mat file ({type(exc).__name__})") from None
    key = next((k for k in mat if k.lower() == "qinit"), None)
    if key is None:
        raise CSBenchError(f"{path}: no variable 'Qinit' in the .mat file")
    Q = np.asarray(mat[key], dtype=np.float64)
    if Q.shape != (N, m):
        raise CSBenchError(f"{path}: Qinit has shape {Q.shape}, expected {N} x {m} for this Phi")
    if not np.all(np.isfinite(Q)):
        raise CSBenchError(f"{path}: Qinit contains NaN or Inf")
    return Q


def import_official(checkpoint, phi, qinit, name, ratio=None, overwrite=False, folder=None):
    """Convert their checkpoint + Phi + Qinit into cs-bench weights ``name``; returns the path."""
    net, n_phases, nf, arch = read_checkpoint(checkpoint)
    Phi = load_phi(phi)
    m = Phi.shape[0]
    Q = _read_qinit(qinit, m)
    r = float(ratio) if ratio is not None else ratio_from_m(m)
    epoch = re.search(r"net_params_(\d+)", Path(checkpoint).name)
    tensors = {f"net.{k}": v for k, v in net.items()}
    tensors["Qinit"] = torch.tensor(Q, dtype=torch.float32)
    tensors["Phi"] = torch.tensor(Phi, dtype=torch.float64)
    meta = {
        "method": arch, "arch": arch, "ratio": r, "M": int(m),
        "phi": {"kind": "stored", "source": Path(phi).name,
                "sha256": hashlib.sha256(np.ascontiguousarray(Phi).tobytes()).hexdigest()},
        "phases": n_phases, "nf": int(nf), "gamma": 0.01, "loss": "L",
        "sym_input": "phase_input", "epochs_done": int(epoch.group(1)) if epoch else None,
        "source": "official ISTA-Net-PyTorch import",
        "official": {"checkpoint": Path(checkpoint).name,
                     "checkpoint_sha256": sha256(checkpoint),
                     "phi": Path(phi).name, "qinit": Path(qinit).name},
        "trainset": None, "device": None, "val_psnr": None, "torch": torch.__version__,
        "init_from": None,
    }
    return wt.install(tensors, meta, name, folder=folder, overwrite=overwrite)


def export_official(name, folder):
    """Write weights ``name`` in their layout into ``folder``; returns the three paths."""
    entry = wt.find(name)
    meta = entry.meta()
    arch = meta.get("arch")
    if arch not in ("ista-net", "ista-net-plus"):
        raise WeightsError(f"weights '{name}' are {arch}; the official layout holds "
                           f"ISTA-Net and ISTA-Net+ only")
    mapping = PLUS_FROM_THEIRS if arch == "ista-net-plus" else OURS_FROM_THEIRS
    tensors = wt.read_tensors(entry.path)
    n = int(meta["phases"])
    sd = {}
    for k in range(n):
        for ours, theirs in mapping.items():
            sd[f"module.fcs.{k}.{theirs}"] = tensors[f"net.layers.{k}.{ours}"].float().clone()
    if "Phi" in tensors:
        Phi = tensors["Phi"].double().numpy()
    else:
        Phi = make_phi(meta["ratio"], int(meta.get("phi", {}).get("seed", 0)))
    Q = tensors["Qinit"].double().numpy()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pkl, phi_name, q_name = official_names(meta["ratio"], meta.get("epochs_done") or 0)
    from scipy.io import savemat

    torch.save(sd, folder / pkl)
    savemat(folder / phi_name, {"phi": np.asarray(Phi)})
    savemat(folder / q_name, {"Qinit": Q})
    return folder / pkl, folder / phi_name, folder / q_name
