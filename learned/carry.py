"""Carry a trained ISTA-Net / FISTA-Net to another number of phases Np or feature maps Nf.

A warm start for the ablation models (Table 1, Table 3, Fig. 6) from one trained network:

- **phases**: target phase k takes source phase min(k, Np_src - 1); a deeper network repeats
  the source's last phase (one more refinement step of the same x(k) = G(soft(F(r), theta)),
  Eq. 10), a shallower one keeps the first Np phases.
- **feature maps**: a wider network keeps the source's Nf channels and adds new ones that
  cannot change the output at step 0: the new F channels are freshly initialised, and every
  weight that *reads* a new channel (F2's and G1's new input columns, G2's new columns) is
  zero. The carried network computes exactly the source's function, and every new weight
  still receives a gradient. A narrower network keeps the first Nf channels (not exact).
- **mu** (FISTA-Net, Sec. 3.4): copied from a FISTA-Net source, else the target keeps its
  initial mu = 0, which makes it *the* source ISTA-Net at step 0.

>>> import torch
>>> from cs_bench.learned.nets import build
>>> src, dst = build("ista-net", 272, phases=2, nf=4), build("ista-net", 272, phases=3, nf=6)
>>> rec = carry(dst.state_dict(), src.state_dict())
>>> rec["phases"], rec["nf"], rec["exact"]
('2->3', '4->6', False)
>>> rec = carry(build("fista-net", 272, phases=2, nf=6).state_dict(), src.state_dict())
>>> rec["exact"]  # wider, same Np: the source's function exactly (mu = 0)
True
"""

import re

import torch

_KEY = re.compile(r"^layers\.(\d+)\.(\w+)$")


def _phases(state):
    return 1 + max(int(_KEY.match(k).group(1)) for k in state if _KEY.match(k))


def _nf(state):
    return int(state["layers.0.F1"].shape[0])


def _widen(own, src, name, n):
    """Copy ``src`` into the leading block of ``own`` (in place); zero the columns of ``own``
    that read a new channel (dim 1 beyond ``n``) where ``name`` reads channels."""
    if name == "F1":  # (nf, 1, 3, 3): new output channels keep their initialisation
        own[:n] = src[:n]
    elif name == "F2" or name == "G1":  # (nf, nf, 3, 3)
        own[:n, :n] = src[:n, :n]
        own[:n, n:] = 0  # old outputs do not read new channels
    elif name == "G2":  # (1, nf, 3, 3)
        own[:, :n] = src[:, :n]
        own[:, n:] = 0
    else:  # rho, theta, mu: shape (1,)
        own.copy_(src)


def carry(own, src):
    """Fill state dict ``own`` (the target network's, changed in place) from ``src``.

    Returns the record kept in the weights' metadata (``init_from["carry"]``).
    """
    k_src, k_own = _phases(src), _phases(own)
    nf_src, nf_own = _nf(src), _nf(own)
    n = min(nf_src, nf_own)
    copied = 0
    with torch.no_grad():
        for key, tensor in own.items():
            m = _KEY.match(key)
            if not m:
                continue
            k, name = int(m.group(1)), m.group(2)
            skey = f"layers.{min(k, k_src - 1)}.{name}"
            if skey not in src:  # mu of a FISTA-Net target from an ISTA-Net: keeps mu = 0
                continue
            s = src[skey].to(tensor.dtype)
            if nf_own >= nf_src:
                _widen(tensor, s, name, n)
            else:  # narrower: the first nf channels
                tensor.copy_(s[tuple(slice(0, d) for d in tensor.shape)])
            copied += 1
    return {"phases": f"{k_src}->{k_own}", "nf": f"{nf_src}->{nf_own}", "copied": copied,
            "exact": nf_own >= nf_src and k_own == k_src}
