"""The model zoo: every trained network the paper's tables need, by name.

Tier 1 (Tables 2 and 4) gets the largest training budget; Tier 2 (Table 1, Table 3,
Fig. 6) one smaller budget that is the same for every model of a table, so comparisons
inside a table are fair. The tables and ``cs-bench train-zoo`` both read this list.

>>> e = entry("ista-net_r0.25_np9_nf32")
>>> e.method, e.ratio, e.phases, e.tier
('ista-net', 0.25, 9, 1)
>>> len([e for e in ZOO if e.tier == 1])
20
"""

from dataclasses import asdict, dataclass

from .errors import unknown_name

TIER1_RATIOS = (0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6)


@dataclass(frozen=True)
class ZooEntry:
    method: str  # registry name
    ratio: float
    tier: int
    phases: int = 9
    nf: int = 32
    gamma: float = 0.01
    init_from: str = ""  # warm start (another zoo name), recorded in the weights' metadata

    @property
    def unfolded(self):
        return self.method in ("ista-net", "fista-net", "ista-net-star", "fista-net-star")

    @property
    def loss(self):
        return "Lstar" if self.method.endswith("-star") else "L"

    @property
    def name(self):
        base = f"{self.method}_r{self.ratio:g}"
        if self.unfolded:
            base += f"_np{self.phases}_nf{self.nf}" + ("_g0" if self.gamma == 0 else "")
        return base + ("_t2" if self.tier == 2 else "")

    def as_dict(self):
        return {**asdict(self), "name": self.name, "loss": self.loss}


def _build():
    z = []
    for r in TIER1_RATIOS:
        z.append(ZooEntry("ista-net", r, 1))
        z.append(ZooEntry("reconnet-enhanced", r, 1))
    for r in (0.1, 0.25):
        z.append(ZooEntry("fista-net", r, 1, init_from=f"ista-net_r{r:g}_np9_nf32"))
        z.append(ZooEntry("reconnet", r, 1))
        z.append(ZooEntry("sda", r, 1))
    # Tier 2, all at ratio 0.25 with one budget
    t2 = []
    for np_ in (5, 7, 9, 11, 13):  # Table 1
        t2 += [ZooEntry("ista-net", 0.25, 2, phases=np_), ZooEntry("fista-net", 0.25, 2, phases=np_)]
    for np_ in (7, 9, 11):  # Table 3 (7, 9) and Fig. 6a (11)
        t2 += [ZooEntry("ista-net-star", 0.25, 2, phases=np_),
               ZooEntry("fista-net-star", 0.25, 2, phases=np_)]
    for m in ("ista-net", "fista-net", "ista-net-star", "fista-net-star"):  # Fig. 6a, gamma = 0
        t2.append(ZooEntry(m, 0.25, 2, phases=11, gamma=0.0))
    for nf in (8, 16, 48, 64):  # Fig. 6b (nf 32 is the Np 9 model of Table 1)
        t2.append(ZooEntry("ista-net", 0.25, 2, nf=nf))
    return z + t2


ZOO = _build()
_BY_NAME = {e.name: e for e in ZOO}


def entry(name):
    if name not in _BY_NAME:
        raise unknown_name("zoo model", name, _BY_NAME)
    return _BY_NAME[name]


def find(method, ratio, tier=1, **kw):
    """The zoo entry for a method at a ratio (and phases/nf/gamma), or None."""
    for e in ZOO:
        if e.method == method and abs(e.ratio - ratio) < 1e-9 and e.tier == tier and all(
                getattr(e, k) == v for k, v in kw.items()):
            return e
    return None
