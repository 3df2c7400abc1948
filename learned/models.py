"""The learned methods of the harness: ISTA-Net, ISTA-Net*, FISTA-Net, FISTA-Net*,
ISTA-Net+, ReconNet, Enhanced ReconNet and SDA.

Each method loads weights by name (see :mod:`cs_bench.learned.weights`; ``weights=None``
means the zoo's name ``<method>_r<ratio>[_np<phases>_nf<nf>]`` with phases / nf 9 / 32
unless given), runs every block of the image through the network in float32 batches
(``batch``; None: 32 blocks on a CPU, see :func:`~cs_bench.learned.runtime.default_batch`)
under ``torch.inference_mode`` and returns the image. ``phases`` / ``nf`` = None take the
weights' values; given, they must match the weights.

Sensing matrix. A model measures with the Phi it was trained with. Harness-Phi weights
accept ``problem.Phi == make_phi(ratio, seed)`` for the seed they were trained with;
weights that carry their own Phi (an imported official checkpoint, a user's Phi) accept
only that Phi. Anything else raises :class:`~cs_bench.errors.CSBenchError`: measure with
the model's Phi (the runner's ``phi`` option) instead.

Cross-ratio use (ISTA-Net / FISTA-Net only; Table 4's ISTA-Net0.4): ``trained_ratio=a``
runs the weights trained at ratio a at the problem's ratio b, with Phi_b (the first M_b
rows of the same orthogonal matrix) in the gradient steps and Qinit_b solved from the
same training blocks (the cached second moment of the weights' training-set recipe,
rebuilt from T91 if it is not cached). ``trained_ratio=None`` means "the run's ratio", so
the params JSON plus the run's ratio always give both ratios.

Every method here is made from its spec (:mod:`cs_bench.learned.spec`) by :func:`make_method`:

>>> from cs_bench.registry import list_methods
>>> sorted(m for m in list_methods("learned") if m in ARCH_OF)
['fista-net', 'fista-net-star', 'ista-net', 'ista-net-plus', 'ista-net-star', 'reconnet', 'reconnet-enhanced', 'sda']
"""

import threading
from typing import ClassVar

import numpy as np

from cs_bench.errors import CSBenchError, WeightsError
from cs_bench.method import Method
from cs_bench.registry import register
from cs_bench.sensing import check_ratio, make_phi

from . import trainset as ts_mod
from . import weights as wt
from .spec import ARCH_OF, ARCHS, UNROLLED, build, on_register  # noqa: F401 - ARCH_OF: doctest
from .qinit import qinit
from .trainset import Recipe


_CACHE = {}  # (path, sha256, M of the run, device) -> (net, op)
_LOCK = threading.Lock()


def _same_phi(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a is b or np.array_equal(a, b):
        return True
    return bool(np.allclose(a, b, rtol=0, atol=1e-9))


def load_model(entry, Phi_run, device, allow_cross_ratio):
    """(net, BlockOperator) of weights ``entry`` for a run measuring with ``Phi_run``.

    Cached in-process on (file, sha256, run M, device).
    """
    import torch

    from .nets import BlockOperator

    key = (str(entry.path), entry.sha256, Phi_run.shape[0], str(device))
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    meta = entry.meta()
    tensors = wt.read_tensors(entry.path)
    arch, M_w = meta["arch"], int(meta["M"])
    net = build(arch, M_w, meta.get("phases") or 9, meta.get("nf") or 32,
                meta.get("out_act") or "linear")
    try:
        net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    except RuntimeError as exc:
        raise WeightsError(f"{entry.path}: the tensors do not fit a {arch} network "
                           f"({str(exc).splitlines()[0][:160]})") from None
    M_run = Phi_run.shape[0]
    if M_run == M_w:
        Q = tensors.get("Qinit")
    elif arch in UNROLLED and allow_cross_ratio:
        tsinfo = meta.get("trainset")
        if not tsinfo:
            raise WeightsError(f"weights '{entry.name}' do not record their training blocks, so "
                               f"Qinit for M={M_run} cannot be solved: use them at M={M_w}")
        R = ts_mod.moment(Recipe(**tsinfo["recipe"]))
        Q = torch.tensor(qinit(R, Phi_run), dtype=torch.float32)
    else:
        raise WeightsError(f"weights '{entry.name}' take M={M_w} measurements per block "
                           f"(ratio {meta.get('ratio')}); this run has M={M_run}")
    Phi_t = torch.tensor(np.asarray(Phi_run), dtype=torch.float32)
    op = BlockOperator(Phi_t, Q if Q is not None else Phi_t.T).to(device)
    net.to(device).eval()
    with _LOCK:
        _CACHE[key] = (net, op)
    return net, op


class LearnedMethod(Method):
    """Common code of the learned methods (see the module docstring)."""

    family = "learned"
    scopes = ("block",)
    arch = ""
    params: ClassVar[dict] = {"weights": None, "device": "auto", "batch": None}
    param_types: ClassVar[dict] = {"weights": str, "batch": int}

    # -- weights -----------------------------------------------------------------------
    def _unrolled(self):
        return self.arch in UNROLLED

    def weights_name(self, ratio):
        """The weights name for a run at ``ratio`` (explicit ``weights`` wins)."""
        if self.p.get("weights"):
            return str(self.p["weights"])
        r = self.p.get("trained_ratio") or ratio
        return wt.default_name(self.name, check_ratio(r), self.p.get("phases"), self.p.get("nf"))

    def entry(self, ratio):
        r = self.p.get("trained_ratio") or ratio
        hint = wt.train_hint(self.name, r, self.p.get("phases"), self.p.get("nf"))
        if self.p.get("weights"):  # a name the user gave: theirs, not the method's zoo
            return wt.find(self.weights_name(ratio), hint=hint)
        return wt.find(self.weights_name(ratio), hint=hint, method=self.name,
                       phases=self.p.get("phases"), nf=self.p.get("nf"))

    def weights_id_for(self, ratio):
        """Short sha256 of the weights file used for a run at ``ratio``."""
        return self.entry(ratio).short_id

    @property
    def weights_id(self):
        """Short sha256 of the weights file when ``weights`` or ``trained_ratio`` fixes the
        file; None when the file depends on the run's ratio (use :meth:`weights_id_for`) or
        is missing (``reconstruct`` then raises the one-line WeightsError)."""
        if not (self.p.get("weights") or self.p.get("trained_ratio")):
            return None
        try:
            return self.weights_id_for(self.p.get("trained_ratio") or 1.0)
        except CSBenchError:
            return None

    @property
    def device(self):
        from .runtime import resolve_device

        return resolve_device(self.p.get("device", "auto"))

    # -- checks ------------------------------------------------------------------------
    def _check_meta(self, entry, meta, ratio):
        if meta.get("arch") != self.arch:
            raise WeightsError(f"weights '{entry.name}' are {meta.get('arch')} weights, not "
                               f"{self.arch} ({self.name})")
        if self._unrolled():
            for k in ("phases", "nf"):
                if self.p.get(k) is not None and meta.get(k) != self.p.get(k):
                    raise CSBenchError(
                        f"weights '{entry.name}' have {k}={meta.get(k)} but {self.name}.{k}="
                        f"{self.p.get(k)}; pass --param {self.name}.{k}={meta.get(k)}")
        tr = self.p.get("trained_ratio")
        if tr is not None and abs(float(meta["ratio"]) - float(tr)) > 1e-9:
            raise CSBenchError(f"weights '{entry.name}' were trained at ratio {meta['ratio']}, "
                               f"not trained_ratio={tr}")

    def _run_phi(self, entry, meta, problem):
        """The Phi this model measures with at the problem's ratio; errors if it differs."""
        phi = meta.get("phi", {})
        if phi.get("kind") == "stored":
            Phi_w = wt.read_tensors(entry.path)["Phi"].double().numpy()
            if not _same_phi(problem.Phi, Phi_w):
                raise CSBenchError(
                    f"weights '{entry.name}' were trained with their own Phi ({Phi_w.shape[0]} x "
                    f"{Phi_w.shape[1]}); this problem measures with another Phi: run with the "
                    f"model's Phi ('cs-bench run ... --phi FILE'; 'cs-bench export-official "
                    f"{entry.name} DIR' writes it)")
            return Phi_w
        seed = int(phi.get("seed", 0))
        Phi_b = make_phi(problem.ratio, seed)
        if not _same_phi(problem.Phi, Phi_b):
            raise CSBenchError(
                f"{self.name} was trained for the harness Phi (seed {seed}); this problem's Phi "
                f"({problem.Phi.shape[0]} x {problem.Phi.shape[1]}) is a different matrix: "
                f"train weights with that Phi ('cs-bench train {self.name} --phi FILE')")
        return Phi_b

    # -- the method --------------------------------------------------------------------
    def reconstruct(self, problem):
        import torch

        from .runtime import default_batch

        y = np.asarray(problem.y, dtype=np.float64)
        if not np.all(np.isfinite(y)):
            raise CSBenchError(f"{self.name}: the measurements contain NaN or Inf")
        entry = self.entry(problem.ratio)
        meta = entry.meta()
        self._check_meta(entry, meta, problem.ratio)
        Phi_run = self._run_phi(entry, meta, problem)
        device = self.device
        net, op = load_model(entry, Phi_run, device, allow_cross_ratio=self._unrolled())
        batch = self.p.get("batch") or default_batch(self.arch, device)
        if int(batch) < 1:
            raise CSBenchError(f"{self.name}: batch must be at least 1, got {batch}")
        batch = int(batch)
        out = np.empty((y.shape[0], problem.N), dtype=np.float64)
        with torch.inference_mode():
            for i in range(0, y.shape[0], batch):
                yb = torch.from_numpy(y[i:i + batch]).to(device=device, dtype=torch.float32)
                out[i:i + batch] = net(yb, op).x.double().cpu().numpy()
        return problem.to_image(out)


_UNROLLED_PARAMS = {"phases": None, "nf": None, "weights": None, "trained_ratio": None,
                    "device": "auto", "batch": None}
_UNROLLED_TYPES = {"phases": int, "nf": int, "weights": str, "trained_ratio": float, "batch": int}


def make_method(s):
    """The harness method class of learned method spec ``s``, registered under its name."""
    unrolled = ARCHS[s.arch].unrolled
    attrs = {
        "arch": s.arch, "summary": s.summary, "__doc__": s.summary,
        "params": dict(_UNROLLED_PARAMS) if unrolled else
        {"weights": None, "device": "auto", "batch": None},
        "param_types": dict(_UNROLLED_TYPES) if unrolled else
        {"weights": str, "batch": int},
        "__module__": __name__,
    }
    cls = type("".join(p.capitalize() for p in s.name.split("-")) + "Method",
               (LearnedMethod,), attrs)
    return register(s.name)(cls)


on_register(make_method)
