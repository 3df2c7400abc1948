"""The authors' release as a weights source: ISTA-Net+, sha256 checks before any read, the
fetch command offline, import/export of ISTA-Net+, and the real release where it is present
(``CS_BENCH_RELEASE``, set by the Makefile from ../shared/release)."""

import hashlib
import os
import pickle
import shutil
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.io import savemat

from cs_bench.cli import main
from cs_bench.errors import CSBenchError, WeightsError
from cs_bench.learned import release
from cs_bench.learned import weights as wt
from cs_bench.learned.nets import BlockOperator, ISTANetPlus, build
from cs_bench.learned.official import export_official, import_official, read_checkpoint
from cs_bench.sensing import make_phi

REAL = os.environ.get(release.ENV)
needs_release = pytest.mark.skipif(
    not REAL or not Path(REAL, release.checkpoint_path("ista-net-plus", 0.25)).is_file(),
    reason="the authors' release is not available (set CS_BENCH_RELEASE)")


@pytest.fixture(autouse=True)
def _dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("CS_BENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path / "cache"))
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _plus_state_dict(nf=4, phases=2, seed=0):
    """An ISTA-Net+ state dict in the authors' layout (DataParallel keys)."""
    g = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    for k in range(phases):
        sd[f"module.fcs.{k}.lambda_step"] = torch.tensor([0.5 + 0.01 * k])
        sd[f"module.fcs.{k}.soft_thr"] = torch.tensor([0.01])
        sd[f"module.fcs.{k}.conv_D"] = torch.randn(nf, 1, 3, 3, generator=g) * 0.3
        for n in ("conv1_forward", "conv2_forward", "conv1_backward", "conv2_backward"):
            sd[f"module.fcs.{k}.{n}"] = torch.randn(nf, nf, 3, 3, generator=g) * 0.1
        sd[f"module.fcs.{k}.conv_G"] = torch.randn(1, nf, 3, 3, generator=g) * 0.1
    return sd


def _their_plus_forward(sd, y, Phi, Qinit, phases):
    """The authors' ISTA-Net+ BasicBlock.forward, restated with F.conv2d."""
    PhiTPhi, PhiTb = Phi.T @ Phi, y @ Phi
    x = y @ Qinit.T
    for k in range(phases):
        p = {n.split(".")[-1]: v for n, v in sd.items() if n.startswith(f"module.fcs.{k}.")}
        x = x - p["lambda_step"] * (x @ PhiTPhi) + p["lambda_step"] * PhiTb
        x_input = x.view(-1, 1, 33, 33)
        x_D = F.conv2d(x_input, p["conv_D"], padding=1)
        x_forward = F.conv2d(F.relu(F.conv2d(x_D, p["conv1_forward"], padding=1)),
                             p["conv2_forward"], padding=1)
        u = torch.mul(torch.sign(x_forward), F.relu(torch.abs(x_forward) - p["soft_thr"]))
        x_backward = F.conv2d(F.relu(F.conv2d(u, p["conv1_backward"], padding=1)),
                              p["conv2_backward"], padding=1)
        x = (x_input + F.conv2d(x_backward, p["conv_G"], padding=1)).view(-1, 1089)
    return x


def test_ista_net_plus_with_zero_transforms_is_the_gradient_step():
    net = ISTANetPlus(phases=3, nf=4)
    with torch.no_grad():
        for layer in net.layers:
            for w in (layer.D, layer.F1, layer.F2, layer.Gt1, layer.Gt2, layer.G):
                w.zero_()
    Phi = torch.tensor(make_phi(0.1), dtype=torch.float32)
    op = BlockOperator(Phi, Phi.T)
    x = torch.rand(4, 1089)
    y = x @ Phi.T
    ref = op.initial(y)
    out = net(y, op, sym="phase_input")
    for k in range(3):
        ref = op.gradient_step(ref, 0.5, op.PhiTy(y))
        assert torch.allclose(out.phases[k], ref, atol=1e-6)
    assert all(float(s.detach().abs().max()) == 0 for s in out.sym)


def test_ista_net_plus_matches_the_authors_forward_after_import(tmp_path):
    sd = _plus_state_dict()
    torch.save(sd, tmp_path / "net_params_200.pkl")
    Phi = make_phi(0.1, seed=3)
    Q = np.random.default_rng(0).standard_normal((1089, Phi.shape[0])) * 0.05
    savemat(tmp_path / "phi.mat", {"phi": Phi})
    savemat(tmp_path / "q.mat", {"Qinit": Q})
    import_official(tmp_path / "net_params_200.pkl", tmp_path / "phi.mat", tmp_path / "q.mat",
                    "plus")
    meta = wt.find("plus").meta()
    assert meta["arch"] == "ista-net-plus" and meta["phases"] == 2 and meta["nf"] == 4
    t = wt.read_tensors(wt.find("plus").path)
    net = build("ista-net-plus", Phi.shape[0], phases=2, nf=4)
    net.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("net.")})
    Phi_t, Q_t = torch.tensor(Phi, dtype=torch.float32), torch.tensor(Q, dtype=torch.float32)
    y = torch.rand(5, 1089) @ Phi_t.T
    with torch.no_grad():
        ours = net(y, BlockOperator(Phi_t, Q_t)).x
        theirs = _their_plus_forward(sd, y, Phi_t, Q_t, 2)
    assert torch.allclose(ours, theirs, atol=1e-5)
    # export writes their layout back, tensor for tensor
    pkl, _, _ = export_official("plus", tmp_path / "out")
    back = torch.load(pkl, weights_only=True)
    assert set(back) == set(sd) and all(torch.equal(back[k], sd[k]) for k in sd)


def test_ista_net_plus_trains(tmp_path):
    from cs_bench.learned.train import TrainConfig, train
    from cs_bench.learned.trainset import Recipe

    rec = Recipe(source="synthetic", n_blocks=128, n_val=32, seed=0)
    cfg = TrainConfig(method="ista-net-plus", ratio=0.25, phases=2, nf=4, epochs=1, batch=64,
                      recipe=rec, name="p", out=str(tmp_path / "run"), checkpoint_every=0)
    res = train(cfg, progress=False, log=lambda *a: None)
    assert res["status"] == "done" and np.isfinite(res["best"]["val_psnr"])
    assert wt.find("p").meta()["arch"] == "ista-net-plus"
    with pytest.raises(CSBenchError, match="does not apply"):
        TrainConfig(method="ista-net-plus", ratio=0.25, loss="Lstar").check()


def _mirror(tmp_path, arch="ista-net-plus", ratio=0.25, content=None):
    """A release folder holding one checkpoint (``content`` bytes) at its release path."""
    root = tmp_path / "mirror"
    p = root / release.checkpoint_path(arch, ratio)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content if content is not None else b"not the release")
    return root, p


def test_a_tampered_release_file_is_refused_before_it_is_read(tmp_path, monkeypatch):
    root, _ = _mirror(tmp_path, content=pickle.dumps({"a": 1}))
    monkeypatch.setenv(release.ENV, str(root))

    def boom(*a, **k):
        raise AssertionError("torch.load was called on an unverified file")

    monkeypatch.setattr(torch, "load", boom)
    with pytest.raises(WeightsError, match="refused unread"):
        release.fetch(["ista-net-plus"], [0.25])


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_pickle_with_a_payload_is_never_executed(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    data = pickle.dumps({"module.fcs.0.lambda_step": _Payload(str(marker))})
    root, _ = _mirror(tmp_path, ratio=0.5, content=data)
    monkeypatch.setenv(release.ENV, str(root))
    with pytest.raises(WeightsError):  # its sha256 is not the registry's
        release.fetch(["ista-net-plus"], [0.5])
    assert not marker.exists()
    # even a registry that listed it would read it tensor-only: refused, never run
    rel = release.checkpoint_path("ista-net-plus", 0.5)
    monkeypatch.setitem(release.SHA256, rel, hashlib.sha256(data).hexdigest())
    with pytest.raises(WeightsError, match="tensor-only"):
        release.fetch(["ista-net-plus"], [0.5])
    assert not marker.exists()


def test_offline_fetch_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(release.ENV, raising=False)
    import pooch

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(pooch, "retrieve", offline)
    code = main(["weights", "fetch", "release", "--methods", "ista-net", "--ratios", "0.25"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1
    assert "connect to the network" in err[0] and release.ENV in err[0]
    assert main(["weights", "fetch", "release", "--ratios", "0.2"]) == 2  # not released
    assert "0.01, 0.04" in capsys.readouterr().err


@needs_release
def test_the_real_release_fetches_and_matches_the_authors_forward(tmp_path):
    names = release.fetch(["ista-net-plus"], [0.25], log=lambda *a: None)
    assert names == ["release-ista-net-plus_r0.25", "release-ista-net-plus_r0.25_phi-ours"]
    own = wt.find(names[0]).meta()
    assert own["source"].startswith("authors' release") and own["epochs_done"] == 200
    sd = torch.load(release.get(release.checkpoint_path("ista-net-plus", 0.25)),
                    map_location="cpu", weights_only=True)
    t = wt.read_tensors(wt.find(names[0]).path)
    Phi, Q = t["Phi"].float(), t["Qinit"].float()
    net, n, nf, arch = read_checkpoint(release.get(release.checkpoint_path("ista-net-plus", 0.25)))
    model = build(arch, Phi.shape[0], phases=n, nf=nf)
    model.load_state_dict(net)
    y = torch.rand(4, 1089) @ Phi.T
    with torch.no_grad():
        assert torch.allclose(model(y, BlockOperator(Phi, Q)).x,
                              _their_plus_forward(sd, y, Phi, Q, n), atol=1e-4)
    ours = wt.find(names[1]).meta()
    assert ours["phi"] == {"kind": "harness", "seed": 0} and ours["trainset"]["recipe"]


@needs_release
def test_release_mirror_with_a_missing_file_says_so(tmp_path, monkeypatch):
    root = tmp_path / "partial"
    shutil.copytree(Path(REAL) / "model", root / "model")
    monkeypatch.setenv(release.ENV, str(root))
    with pytest.raises(WeightsError, match="missing from"):
        release.fetch(["ista-net"], [0.25])
