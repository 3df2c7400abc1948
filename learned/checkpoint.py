"""Training checkpoints: one safetensors file, written atomically, resumable exactly.

Tensors: the model (``net.*``), the Adam state (``opt.<param index>.<key>``), the torch
RNG state(s) (``rng.torch``, ``rng.cuda.<i>``), the current epoch's shuffling order
(``perm``) and the best epoch's network so far (``best.*``, :func:`read_best`), so that the
checkpoint alone carries everything a resumed run needs, its best epoch included. Everything else (config, epoch, step within the epoch, optimizer param groups,
the numpy and python RNG states, history, best validation PSNR, loss accumulators) is JSON
in the header's ``__metadata__["cs_bench_checkpoint"]``. One file means one atomic
``os.replace``: a crash leaves either the old or the new checkpoint, never a mix. Nothing
is pickled.

>>> import torch, tempfile, pathlib
>>> net = torch.nn.Linear(2, 1); opt = torch.optim.Adam(net.parameters())
>>> net(torch.ones(1, 2)).sum().backward(); opt.step()
>>> p = pathlib.Path(tempfile.mkdtemp()) / "checkpoint.safetensors"
>>> save(p, net, opt, {"epoch": 1}, perm=torch.arange(4), best=net.state_dict())
>>> net2 = torch.nn.Linear(2, 1); opt2 = torch.optim.Adam(net2.parameters())
>>> state, perm = load(p, net2, opt2)
>>> state["epoch"], bool(torch.equal(net2.weight, net.weight)), perm.tolist()
(1, True, [0, 1, 2, 3])
>>> sorted(read_best(p))
['bias', 'weight']
"""

import json
import random

import numpy as np
import torch

from cs_bench.errors import CSBenchError

from cs_bench.files import atomic_write

KEY = "cs_bench_checkpoint"
#: the prefix of the best epoch's network in a checkpoint
BEST = "best."


def rng_state():
    """(tensors, json) of the torch / numpy / python RNG states."""
    tensors = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    py = random.getstate()
    info = {"numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
            "python": [py[0], list(py[1]), py[2]]}
    return tensors, info


def set_rng_state(tensors, info):
    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    kind, keys, pos, has_gauss, gauss = info["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    v, state, g = info["python"]
    random.setstate((v, tuple(state), g))


def save(path, net, opt, state, perm=None, ema=None, best=None):
    """Write model, optimizer, RNG states, ``perm``, the weight average ``ema`` (a module
    like ``net``), the best epoch's state dict ``best`` and the JSON ``state`` to ``path``."""
    from safetensors.torch import save_file

    tensors = {f"net.{k}": v for k, v in net.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v for k, v in ema.state_dict().items()})
    if best is not None:
        tensors.update({f"{BEST}{k}": v for k, v in best.items()})
    osd = opt.state_dict()
    for i, st in osd["state"].items():
        for k, v in st.items():
            t = v if torch.is_tensor(v) else torch.tensor(v)
            tensors[f"opt.{i}.{k}"] = t
    rt, rinfo = rng_state()
    tensors.update(rt)
    if perm is not None:
        tensors["perm"] = torch.as_tensor(perm, dtype=torch.int64)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    meta = {**state, "param_groups": osd["param_groups"], "rng": rinfo}
    header = {KEY: json.dumps(meta)}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=header))


def read_best(path):
    """The best epoch's state dict that the checkpoint at ``path`` carries (None: it carries
    none, or the file is not a readable checkpoint)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            keys = [k for k in f.keys() if k.startswith(BEST)]
            return {k[len(BEST):]: f.get_tensor(k) for k in keys} or None
    except Exception:  # noqa: BLE001 - an unreadable file carries nothing
        return None


def read_state(path):
    """The JSON part of a checkpoint."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {})[KEY])
    except Exception as exc:  # noqa: BLE001 - any failure of the reader is a damaged file
        raise CSBenchError(f"{path}: not a readable training checkpoint "
                           f"({type(exc).__name__})") from None


def load(path, net, opt, ema=None):
    """Restore ``net``, ``opt``, the RNG states and, given ``ema``, the weight average from
    ``path``; returns (state, perm)."""
    try:
        return _load(path, net, opt, ema)
    except CSBenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - missing entries, wrong shapes: a damaged file
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        raise CSBenchError(f"{path}: damaged training checkpoint ({type(exc).__name__}"
                           f"{': ' + first if first else ''}); delete the run folder or "
                           f"start again with --force") from None


def _load(path, net, opt, ema=None):
    from safetensors.torch import load_file

    state = read_state(path)
    tensors = load_file(str(path), device="cpu")
    device = next(net.parameters()).device
    for prefix, module in (("net.", net), ("ema.", ema)):
        if module is not None:
            module.load_state_dict({k[len(prefix):]: v.to(device) for k, v in tensors.items()
                                    if k.startswith(prefix)})
    opt_state = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, i, name = k.split(".", 2)
            opt_state.setdefault(int(i), {})[name] = v if name == "step" else v.to(device)
    groups = state.pop("param_groups")
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    opt.load_state_dict({"state": opt_state, "param_groups": groups})
    set_rng_state(tensors, state.pop("rng"))
    return state, tensors.get("perm")
