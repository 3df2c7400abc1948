"""One declarative spec per learned method: what the registry, training, weights naming,
the zoo, the tables and the bench know about it.

Two levels:

* an :class:`Arch` is a network family: how to build it (``build(m, phases, nf, out_act,
  mu_init)``), whether it unrolls ISTA (uses Phi and Qinit, has Np phases and Nf feature
  maps, runs at another ratio), whether it returns symmetry residuals (the gamma term of
  the loss), which losses apply, which archs' weights warm-start it, and its inference
  batch on a CPU;
* a :class:`MethodSpec` is a registry method: an arch trained with one loss, with the
  paper's label and a one-line summary (ISTA-Net and ISTA-Net* are one arch, two methods).

:func:`register_spec` (with :func:`register_arch`) is all a new network needs: the harness
method (``cs-bench run --methods NAME``), ``cs-bench train NAME``, the default weights name
and ``weights list`` follow from it. Importing this module does not import torch (builders
import the network modules when called).

>>> spec("ista-net-star").arch, spec("ista-net-star").loss, arch("ista-net").unrolled
('ista-net', 'Lstar', True)
>>> weights_name("ista-net", 0.25), weights_name("sda", 0.1)
('ista-net_r0.25_np9_nf32', 'sda_r0.1')
>>> parse_weights_name("fista-net_r0.25_np11_nf32_g0_t2")
{'method': 'fista-net', 'ratio': 0.25, 'phases': 11, 'nf': 32, 'gamma': 0.0, 'tier': 2}
>>> label("reconnet-enhanced")
'Enhanced ReconNet'
"""

import re
from dataclasses import dataclass
from typing import Callable

from cs_bench.errors import unknown_name


@dataclass(frozen=True)
class Arch:
    """A network family (see the module docstring)."""

    name: str
    build: Callable  # build(m, phases, nf, out_act, mu_init) -> torch.nn.Module
    unrolled: bool = False
    sym: bool = False
    losses: tuple = ("mse",)
    family: str = None  # archs of one family warm-start each other (default: the arch alone)
    cpu_batch: int = 32  # blocks per forward pass at inference on a CPU (GPU: 1024)

    @property
    def warm_family(self):
        return self.family or self.name


@dataclass(frozen=True)
class MethodSpec:
    """A learned method of the registry: an arch and the loss it is trained with."""

    name: str
    arch: str
    loss: str
    label: str
    summary: str


ARCHS = {}
SPECS = {}
#: views kept in step with the specs (modules and tests read them as plain containers)
ARCH_OF = {}  # method name -> arch name
UNROLLED = set()  # arch names that unroll ISTA
_listeners = []


def register_arch(a):
    if a.name in ARCHS and ARCHS[a.name] != a:
        raise RuntimeError(f"network '{a.name}' registered twice")
    ARCHS[a.name] = a
    if a.unrolled:
        UNROLLED.add(a.name)
    return a


def register_spec(s):
    """Add a learned method; the harness registry gets its method class at once."""
    if s.arch not in ARCHS:
        raise RuntimeError(f"method '{s.name}': unknown network '{s.arch}' (register_arch first)")
    if s.loss not in ARCHS[s.arch].losses:
        raise RuntimeError(f"method '{s.name}': loss '{s.loss}' does not apply to {s.arch}")
    if s.name in SPECS and SPECS[s.name] != s:
        raise RuntimeError(f"learned method '{s.name}' registered twice")
    SPECS[s.name] = s
    ARCH_OF[s.name] = s.arch
    for fn in _listeners:
        fn(s)
    return s


def on_register(fn):
    """Call ``fn(spec)`` for every spec, now and when one is registered later."""
    _listeners.append(fn)
    for s in list(SPECS.values()):
        fn(s)


def spec(name):
    if name not in SPECS:
        raise unknown_name("learned method", name, SPECS)
    return SPECS[name]


def arch(name):
    if name not in ARCHS:
        raise unknown_name("network", name, ARCHS)
    return ARCHS[name]


def label(method):
    return SPECS[method].label if method in SPECS else method


def method_for(arch_name, loss):
    """The registry method of ``arch_name`` trained with ``loss`` (ista-net + Lstar ->
    ista-net-star), or None."""
    for s in SPECS.values():
        if s.arch == arch_name and s.loss == loss:
            return s.name
    return None


def build(arch_name, m, phases=9, nf=32, out_act="linear", mu_init=0.0):
    """A fresh network of ``arch_name`` at M = ``m`` (its spec's builder).

    Convolution weights are kept channels-last: oneDNN then runs NHWC kernels without
    reordering every activation (1.1x faster for an ISTA-Net training step on a CPU; the
    values are the same, only the memory layout differs). Other tensors are left as they are.
    """
    import torch

    net = arch(arch_name).build(m, phases, nf, out_act, mu_init)
    return net.to(memory_format=torch.channels_last)


# -- weights names -------------------------------------------------------------------------
def weights_name(method, ratio, phases=None, nf=None, gamma=0.01, tier=1):
    """``<method>_r<ratio>[_np<Np>_nf<Nf>][_g0][_t2]``: the zoo's and the default weights name
    (phases / nf None mean 9 / 32; the Np/Nf part only for unrolled networks)."""
    name = f"{method}_r{float(ratio):g}"
    if ARCH_OF.get(method) in UNROLLED:
        name += f"_np{int(phases or 9)}_nf{int(nf or 32)}" + ("_g0" if gamma == 0 else "")
    return name + ("_t2" if tier == 2 else "")


_NAME = re.compile(r"^(?P<method>.+?)_r(?P<ratio>[0-9.]+(?:e-?\d+)?)"
                   r"(?:_np(?P<phases>\d+)_nf(?P<nf>\d+))?(?P<g0>_g0)?(?P<t2>_t2)?$")


def parse_weights_name(name):
    """The fields of a :func:`weights_name` (None for a name of another form)."""
    m = _NAME.match(name)
    if not m or m["method"] not in SPECS:
        return None
    return {"method": m["method"], "ratio": float(m["ratio"]),
            "phases": int(m["phases"]) if m["phases"] else None,
            "nf": int(m["nf"]) if m["nf"] else None,
            "gamma": 0.0 if m["g0"] else 0.01, "tier": 2 if m["t2"] else 1}


# -- the networks of the paper -------------------------------------------------------------
def _ista(m, phases, nf, out_act, mu_init):
    from .nets import ISTANet
    return ISTANet(phases, nf, momentum=False)


def _fista(m, phases, nf, out_act, mu_init):
    from .nets import ISTANet
    return ISTANet(phases, nf, momentum=True, mu_init=mu_init)


def _plus(m, phases, nf, out_act, mu_init):
    from .nets import ISTANetPlus
    return ISTANetPlus(phases, nf)


def _reconnet(m, phases, nf, out_act, mu_init):
    from .nets import ReconNet
    return ReconNet(m, enhanced=False)


def _reconnet_enhanced(m, phases, nf, out_act, mu_init):
    from .nets import ReconNet
    return ReconNet(m, enhanced=True)


def _sda(m, phases, nf, out_act, mu_init):
    from .nets import SDA
    return SDA(m, out_act=out_act)


for _a in (
    Arch("ista-net", _ista, unrolled=True, sym=True, losses=("L", "Lstar"), family="ista"),
    Arch("fista-net", _fista, unrolled=True, sym=True, losses=("L", "Lstar"), family="ista"),
    Arch("ista-net-plus", _plus, unrolled=True, sym=True, losses=("L",)),
    Arch("reconnet", _reconnet, family="reconnet"),
    Arch("reconnet-enhanced", _reconnet_enhanced, family="reconnet"),
    Arch("sda", _sda, cpu_batch=1024),
):
    register_arch(_a)

for _s in (
    MethodSpec("ista-net", "ista-net", "L", "ISTA-Net",
               "ISTA-Net (Zhang & Ghanem 2018): unrolled ISTA with learned transforms, loss L"),
    MethodSpec("ista-net-star", "ista-net", "Lstar", "ISTA-Net*",
               "ISTA-Net*: ISTA-Net trained with L* (MSE of every phase, Eq. 15)"),
    MethodSpec("fista-net", "fista-net", "L", "FISTA-Net",
               "FISTA-Net: ISTA-Net with a learned momentum step mu(k) per phase, loss L"),
    MethodSpec("fista-net-star", "fista-net", "Lstar", "FISTA-Net*",
               "FISTA-Net*: FISTA-Net trained with L* (Eq. 15)"),
    MethodSpec("ista-net-plus", "ista-net-plus", "L", "ISTA-Net+",
               "ISTA-Net+ (Zhang & Ghanem, CVPR 2018): ISTA-Net in the residual domain, "
               "x(k) = r(k) + G(G~(soft(F(D(r(k))))))"),
    MethodSpec("reconnet", "reconnet", "mse", "ReconNet",
               "ReconNet (Kulkarni et al. 2016): FC + 6 convolutions, MSE"),
    MethodSpec("reconnet-enhanced", "reconnet-enhanced", "mse", "Enhanced ReconNet",
               "Enhanced ReconNet: ReconNet without the ReLU after the third convolution"),
    MethodSpec("sda", "sda", "mse", "SDA",
               "SDA (Mousavi et al. 2015): fully connected M-N-M-N decoder, sigmoid hidden "
               "layers"),
):
    register_spec(_s)
