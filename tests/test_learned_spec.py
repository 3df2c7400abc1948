"""A new learned network needs one module and one spec: the registry, training, weights
naming and the runner follow from it."""

import numpy as np
import pytest
from torch import nn

from cs_bench import registry
from cs_bench.learned import spec as sp
from cs_bench.learned import weights as wt
from cs_bench.learned.nets import Output
from cs_bench.learned.train import TrainConfig, train
from cs_bench.learned.trainset import Recipe
from cs_bench.sensing import N


class ToyNet(nn.Module):
    """x = W y + b: the smallest network that learns a linear reconstruction."""

    def __init__(self, m):
        super().__init__()
        self.fc = nn.Linear(m, N)

    def forward(self, y, op=None, sym=None, s=None):
        x = self.fc(y.float())
        return Output(x, [x])


@pytest.fixture
def toy(tmp_path, monkeypatch):
    monkeypatch.setenv("CS_BENCH_WEIGHTS", str(tmp_path / "weights"))
    registry.list_methods()  # the built-in methods first
    a = sp.register_arch(sp.Arch("toy", lambda m, *rest: ToyNet(m)))
    s = sp.register_spec(sp.MethodSpec("toy-net", "toy", "mse", "Toy", "a linear toy network"))
    yield s
    for d in (sp.SPECS, sp.ARCH_OF, registry._REGISTRY):
        d.pop(s.name, None)
    sp.ARCHS.pop(a.name, None)


def test_a_network_registered_by_its_spec_alone_trains_and_runs(toy, tmp_path):
    from cs_bench.runner import run

    assert "toy-net" in registry.list_methods("learned")
    assert registry.method_class("toy-net").summary == "a linear toy network"
    assert sp.weights_name("toy-net", 0.25) == "toy-net_r0.25"
    cfg = TrainConfig(method="toy-net", ratio=0.25, epochs=2, batch=32, lr=1e-2,
                      recipe=Recipe(source="synthetic", n_blocks=128, n_val=32, seed=0),
                      out=str(tmp_path / "run"), checkpoint_every=0, threads=1)
    res = train(cfg, progress=False, log=lambda *a: None)
    assert res["status"] == "done" and res["name"] == "toy-net_r0.25"
    assert wt.find("toy-net_r0.25").meta()["method"] == "toy-net"
    df = run(["toy-net"], "skimage", [0.25], images=["text"], cache=False, progress=False)
    assert df.error.isna().all() and np.isfinite(df.psnr).all()


def test_a_spec_must_name_a_known_network_and_a_loss_it_takes():
    with pytest.raises(RuntimeError, match="unknown network"):
        sp.register_spec(sp.MethodSpec("x", "no-such-net", "mse", "X", ""))
    with pytest.raises(RuntimeError, match="does not apply"):
        sp.register_spec(sp.MethodSpec("x", "sda", "Lstar", "X", ""))
    assert "x" not in sp.SPECS


def test_every_builtin_spec_builds_and_parses_its_names():
    for name, s in sp.SPECS.items():
        net = sp.build(s.arch, 272, phases=2, nf=4)
        assert isinstance(net, nn.Module) and sum(p.numel() for p in net.parameters()) > 0
        got = sp.parse_weights_name(sp.weights_name(name, 0.25, phases=2, nf=4, tier=2))
        assert got["method"] == name and got["ratio"] == 0.25 and got["tier"] == 2
        assert got["phases"] == (2 if s.arch in sp.UNROLLED else None)
