"""Interop with the authors' ISTA-Net-PyTorch release, on a synthetic checkpoint built in
exactly their layout (DataParallel state dict, phi / Qinit .mat files)."""

import argparse
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.io import loadmat, savemat

from cs_bench import Problem, get_method
from cs_bench.errors import CSBenchError, WeightsError
from cs_bench.learned import weights as wt
from cs_bench.learned.cli import add_commands
from cs_bench.learned.official import export_official, import_official

NP, NF, M = 9, 32, 109


@pytest.fixture(autouse=True)
def _user_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CS_BENCH_WEIGHTS", str(tmp_path / "weights"))
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def their_phi():
    """Their own Phi: random orthonormal rows, not the harness's matrix."""
    g = torch.Generator().manual_seed(0)
    return torch.linalg.qr(torch.randn(1089, M, generator=g, dtype=torch.float64))[0].T.numpy()


@pytest.fixture
def release(tmp_path, their_phi):
    """net_params_200.pkl, phi_0_10_1089.mat, Initialization_Matrix_10.mat as they ship."""
    g = torch.Generator().manual_seed(0)
    sd = OrderedDict()
    for k in range(NP):
        sd[f"module.fcs.{k}.lambda_step"] = torch.tensor([0.5 + 0.01 * k])
        sd[f"module.fcs.{k}.soft_thr"] = torch.tensor([0.01 + 0.001 * k])
        sd[f"module.fcs.{k}.conv1_forward"] = torch.randn(NF, 1, 3, 3, generator=g) * 0.3
        sd[f"module.fcs.{k}.conv2_forward"] = torch.randn(NF, NF, 3, 3, generator=g) * 0.06
        sd[f"module.fcs.{k}.conv1_backward"] = torch.randn(NF, NF, 3, 3, generator=g) * 0.06
        sd[f"module.fcs.{k}.conv2_backward"] = torch.randn(1, NF, 3, 3, generator=g) * 0.06
    rng = np.random.default_rng(0)
    phi = their_phi
    qinit = rng.standard_normal((1089, M)) * 0.05
    d = tmp_path / "release"
    d.mkdir()
    torch.save(sd, d / "net_params_200.pkl")
    savemat(d / "phi_0_10_1089.mat", {"phi": phi})
    savemat(d / "Initialization_Matrix_10.mat", {"Qinit": qinit})
    return {"dir": d, "sd": sd, "phi": phi, "qinit": qinit,
            "pkl": d / "net_params_200.pkl", "phi_mat": d / "phi_0_10_1089.mat",
            "q_mat": d / "Initialization_Matrix_10.mat"}


def _official_forward(sd, Phix, Phi, Qinit):
    """Their ISTANet.forward / BasicBlock.forward, restated with F.conv2d."""
    PhiTPhi = Phi.T @ Phi
    PhiTb = Phix @ Phi
    x = Phix @ Qinit.T
    for k in range(NP):
        p = {n: sd[f"module.fcs.{k}.{n}"] for n in ("lambda_step", "soft_thr", "conv1_forward",
                                                    "conv2_forward", "conv1_backward",
                                                    "conv2_backward")}
        x = x - p["lambda_step"] * (x @ PhiTPhi)
        x = x + p["lambda_step"] * PhiTb
        x_input = x.view(-1, 1, 33, 33)
        u = F.conv2d(F.relu(F.conv2d(x_input, p["conv1_forward"], padding=1)), p["conv2_forward"],
                     padding=1)
        u = torch.mul(torch.sign(u), F.relu(torch.abs(u) - p["soft_thr"]))
        x = F.conv2d(F.relu(F.conv2d(u, p["conv1_backward"], padding=1)), p["conv2_backward"],
                     padding=1).view(-1, 1089)
    return x


def test_imported_model_computes_their_forward_pass(release):
    import_official(release["pkl"], release["phi_mat"], release["q_mat"], "theirs")
    meta = wt.read_metadata("theirs")
    assert (meta["phases"], meta["nf"], meta["M"], meta["ratio"]) == (NP, NF, M, 0.1)
    assert meta["phi"]["kind"] == "stored" and meta["sym_input"] == "phase_input"
    assert meta["epochs_done"] == 200
    img = np.random.default_rng(1).random((66, 70))
    prob = Problem.from_image(img, 0.1, Phi=release["phi"])
    rec = get_method("ista-net", weights="theirs").reconstruct(prob)
    Phi = torch.tensor(release["phi"], dtype=torch.float32)
    Q = torch.tensor(release["qinit"], dtype=torch.float32)
    with torch.no_grad():
        ref = _official_forward(release["sd"], torch.tensor(prob.y, dtype=torch.float32), Phi, Q)
    assert np.allclose(rec, prob.to_image(ref.double().numpy()), atol=1e-4)


def test_imported_model_refuses_another_phi(release):
    import_official(release["pkl"], release["phi_mat"], release["q_mat"], "theirs")
    img = np.random.default_rng(1).random((40, 40))
    with pytest.raises(CSBenchError, match="own Phi"):
        get_method("ista-net", weights="theirs").reconstruct(Problem.from_image(img, 0.1))
    with pytest.raises(CSBenchError, match="nf=32"):
        get_method("ista-net", weights="theirs", nf=16).reconstruct(
            Problem.from_image(img, 0.1, Phi=release["phi"]))


def test_import_export_import_is_identity(release, tmp_path):
    import_official(release["pkl"], release["phi_mat"], release["q_mat"], "first")
    pkl, phi_mat, q_mat = export_official("first", tmp_path / "out")
    assert (pkl.name, phi_mat.name, q_mat.name) == (
        "net_params_200.pkl", "phi_0_10_1089.mat", "Initialization_Matrix_10.mat")
    # their layout: a plain tensor state dict with module. prefixes, and the two .mat files
    sd = torch.load(pkl, weights_only=True)
    assert list(sd) == list(release["sd"])
    assert all(torch.equal(sd[k], release["sd"][k]) for k in sd)
    assert np.array_equal(loadmat(phi_mat)["phi"], release["phi"])
    assert np.allclose(loadmat(q_mat)["Qinit"], release["qinit"], atol=1e-6)  # float32 inside
    import_official(pkl, phi_mat, q_mat, "second")
    a = wt.read_tensors(wt.find("first").path)
    b = wt.read_tensors(wt.find("second").path)
    assert a.keys() == b.keys()
    assert all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def test_export_of_our_own_weights_uses_the_harness_phi(release, tmp_path):
    from cs_bench.sensing import make_phi

    t = {k: v for k, v in wt.read_tensors(
        import_official(release["pkl"], release["phi_mat"], release["q_mat"], "x")).items()
        if k != "Phi"}
    meta = {**wt.read_metadata("x"), "phi": {"kind": "harness", "seed": 0}}
    wt.install(t, meta, "ours")
    _, phi_mat, _ = export_official("ours", tmp_path / "ours")
    assert np.array_equal(loadmat(phi_mat)["phi"], make_phi(0.1))


def test_bad_checkpoints_are_refused(release, tmp_path):
    plus = OrderedDict(release["sd"])
    plus["module.fcs.0.conv_D"] = torch.zeros(32, 1, 3, 3)
    torch.save(plus, tmp_path / "plus.pkl")
    with pytest.raises(WeightsError, match="lacks conv_G"):  # half ISTA-Net, half ISTA-Net+
        import_official(tmp_path / "plus.pkl", release["phi_mat"], release["q_mat"], "plus")
    short = OrderedDict((k, v) for k, v in release["sd"].items() if "fcs.3.soft_thr" not in k)
    torch.save(short, tmp_path / "short.pkl")
    with pytest.raises(WeightsError, match="soft_thr"):
        import_official(tmp_path / "short.pkl", release["phi_mat"], release["q_mat"], "short")
    torch.save({"model": _Opaque()}, tmp_path / "code.pkl")  # needs unpickling of a class
    with pytest.raises(WeightsError, match="tensor-only"):
        import_official(tmp_path / "code.pkl", release["phi_mat"], release["q_mat"], "code")
    savemat(tmp_path / "q_wrong.mat", {"Qinit": release["qinit"][:, :50]})
    with pytest.raises(CSBenchError, match="Qinit has shape"):
        import_official(release["pkl"], release["phi_mat"], tmp_path / "q_wrong.mat", "q")


class _Opaque:
    pass


def test_cli_import_and_export(release, tmp_path, capsys):
    p = argparse.ArgumentParser(prog="cs-bench")
    add_commands(p.add_subparsers(dest="command"))
    args = p.parse_args(["import-official", "--checkpoint", str(release["pkl"]), "--phi",
                         str(release["phi_mat"]), "--qinit", str(release["q_mat"]), "--name",
                         "cli-import"])
    assert args.func(args) == 0
    assert "ista-net.weights=cli-import" in capsys.readouterr().out
    with pytest.raises(WeightsError, match="already exist"):
        args.func(args)
    args = p.parse_args(["export-official", "cli-import", str(tmp_path / "exp")])
    assert args.func(args) == 0
    assert (tmp_path / "exp" / "net_params_200.pkl").is_file()
