"""The learned methods through the harness: end to end, cross-ratio, Phi checks, errors."""

import json

import numpy as np
import pytest
import torch

from cs_bench import Problem, get_method, list_methods
from cs_bench.errors import CSBenchError, WeightsError
from cs_bench.learned import weights as wt
from cs_bench.learned.nets import BlockOperator, build
from cs_bench.learned.qinit import qinit
from cs_bench.learned.train import TrainConfig, train
from cs_bench.learned.trainset import Recipe, load
from cs_bench.metrics import psnr
from cs_bench.registry import parse_param
from cs_bench.sensing import make_phi

RECIPE = Recipe(source="synthetic", n_blocks=256, n_val=64, seed=0)
NAME = "ista-net_r0.25_np1_nf4"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Tiny ISTA-Net weights trained at ratio 0.25 into a temporary user folder."""
    root = tmp_path_factory.mktemp("learned_models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CS_BENCH_WEIGHTS", str(root / "weights"))
        mp.setenv("CS_BENCH_CACHE", str(root / "cache"))
        old = torch.get_num_threads()
        torch.set_num_threads(1)
        cfg = TrainConfig(method="ista-net", ratio=0.25, phases=1, nf=4, epochs=2, batch=64,
                          recipe=RECIPE, out=str(root / "run"), device="cpu", precision="fp32",
                          checkpoint_every=0)
        res = train(cfg, progress=False, log=lambda *a: None)  # builds and caches RECIPE
        torch.set_num_threads(old)
    return root, res


@pytest.fixture(autouse=True)
def _env(trained, monkeypatch):
    root, _ = trained
    monkeypatch.setenv("CS_BENCH_WEIGHTS", str(root / "weights"))
    monkeypatch.setenv("CS_BENCH_CACHE", str(root / "cache"))
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _orthonormal_rows(m, seed):
    """A random m x 1089 matrix with orthonormal rows (not the harness's)."""
    g = torch.Generator().manual_seed(seed)
    return torch.linalg.qr(torch.randn(1089, m, generator=g, dtype=torch.float64))[0].T.numpy()


def _net_of(name):
    entry = wt.find(name)
    meta, t = entry.meta(), wt.read_tensors(entry.path)
    net = build(meta["arch"], meta["M"], meta.get("phases") or 9, meta.get("nf") or 32)
    net.load_state_dict({k[4:]: v for k, v in t.items() if k.startswith("net.")})
    return net.eval(), t


def _tile(blocks, rows, cols):
    b = blocks[:rows * cols].reshape(rows, cols, 33, 33).transpose(0, 2, 1, 3)
    return b.reshape(rows * 33, cols * 33).astype(np.float64)


def test_learned_methods_are_registered():
    learned = list_methods("learned")
    for m in ("ista-net", "ista-net-star", "fista-net", "fista-net-star", "reconnet",
              "reconnet-enhanced", "sda"):
        assert m in learned
    m = get_method("ista-net")
    assert m.scope == "block" and m.device == "cpu"
    assert parse_param("ista-net", "trained_ratio", "0.4") == 0.4
    assert parse_param("ista-net", "phases", "5") == 5


def test_end_to_end_reconstruction_matches_the_network(trained):
    val = load(RECIPE).val
    img = _tile(val, 2, 3)  # 66 x 99: six validation blocks
    prob = Problem.from_image(img, 0.25)
    m = get_method("ista-net", weights=NAME)
    rec = m.reconstruct(prob)
    assert rec.shape == img.shape and rec.dtype == np.float64
    net, t = _net_of(NAME)
    op = BlockOperator(torch.tensor(make_phi(0.25), dtype=torch.float32), t["Qinit"])
    with torch.no_grad():
        direct = net(torch.tensor(prob.y, dtype=torch.float32), op).x.double().numpy()
    assert np.allclose(rec, prob.to_image(direct), atol=1e-6)
    # the default name finds the same weights; the result is deterministic
    again = get_method("ista-net", phases=1, nf=4).reconstruct(prob)
    assert np.array_equal(rec, again)


def test_harness_psnr_on_the_validation_blocks_is_the_recorded_validation_psnr(trained):
    _, res = trained
    img = _tile(load(RECIPE).val, 8, 8)  # all 64 validation blocks, in one image
    rec = get_method("ista-net", weights=NAME).reconstruct(Problem.from_image(img, 0.25))
    assert psnr(img, rec) == pytest.approx(wt.read_meta(res["weights"])["val_psnr"], abs=1e-3)


def test_weights_id_and_params(trained):
    _, res = trained
    explicit = get_method("ista-net", weights=NAME)
    assert explicit.weights_id == wt.sha256(res["weights"])[:16]
    default = get_method("ista-net", phases=1, nf=4)
    assert default.weights_id is None  # depends on the run's ratio
    assert default.weights_id_for(0.25) == explicit.weights_id
    cross = get_method("ista-net", phases=1, nf=4, trained_ratio=0.25)
    assert cross.weights_id == explicit.weights_id
    assert json.loads(cross.params_json())["trained_ratio"] == 0.25
    assert get_method("ista-net", weights="nope").weights_id is None


def test_cross_ratio_uses_phi_b_and_qinit_b_from_the_same_blocks(trained):
    img = _tile(load(RECIPE).val, 2, 2)
    prob = Problem.from_image(img, 0.1)
    rec = get_method("ista-net", phases=1, nf=4, trained_ratio=0.25).reconstruct(prob)
    net, _ = _net_of(NAME)
    Phi_b = make_phi(0.1)
    Q_b = qinit(load(RECIPE).moment, Phi_b)
    op = BlockOperator(torch.tensor(Phi_b, dtype=torch.float32),
                       torch.tensor(Q_b, dtype=torch.float32))
    with torch.no_grad():
        direct = net(torch.tensor(prob.y, dtype=torch.float32), op).x.double().numpy()
    assert np.allclose(rec, prob.to_image(direct), atol=1e-5)
    # explicit weights at another ratio work the same way (Table 4's ISTA-Net0.4 cells)
    assert np.allclose(get_method("ista-net", weights=NAME).reconstruct(prob), rec, atol=1e-6)
    with pytest.raises(CSBenchError, match="trained at ratio 0.25"):
        get_method("ista-net", weights=NAME, trained_ratio=0.4).reconstruct(prob)


def test_a_users_phi_is_refused(trained):
    img = np.random.default_rng(0).random((40, 40))
    Phi = _orthonormal_rows(272, seed=1)
    with pytest.raises(CSBenchError, match="harness Phi"):
        get_method("ista-net", weights=NAME).reconstruct(Problem.from_image(img, 0.25, Phi=Phi))
    # the harness's rows in another order are another matrix too
    with pytest.raises(CSBenchError, match="harness Phi"):
        get_method("ista-net", weights=NAME).reconstruct(
            Problem.from_image(img, 0.25, Phi=make_phi(0.25)[::-1].copy()))


def test_missing_weights_give_one_line_with_the_fix():
    img = np.zeros((33, 33))
    with pytest.raises(WeightsError) as exc:
        get_method("fista-net").reconstruct(Problem.from_image(img, 0.4))
    msg = str(exc.value)
    assert "fista-net_r0.4_np9_nf32" in msg and "fista-net has weights" in msg
    assert NAME not in msg  # another method's weights are not listed (issue 19)
    assert "cs-bench train fista-net --ratio 0.4" in msg and "\n" not in msg


def test_mismatched_architecture_or_phases_are_refused(trained):
    img = np.zeros((33, 33))
    prob = Problem.from_image(img, 0.25)
    with pytest.raises(WeightsError, match="ista-net weights"):
        get_method("fista-net", weights=NAME).reconstruct(prob)
    with pytest.raises(CSBenchError, match="phases=1"):
        get_method("ista-net", weights=NAME, phases=9).reconstruct(prob)
    with pytest.raises(CSBenchError, match="NaN"):
        prob.y[0, 0] = np.nan
        get_method("ista-net", weights=NAME).reconstruct(prob)


def _install_fresh(arch, method, ratio, name):
    torch.manual_seed(0)
    M = make_phi(ratio).shape[0]
    net = build(arch, M)
    meta = {"method": method, "arch": arch, "ratio": ratio, "M": M,
            "phi": {"kind": "harness", "seed": 0}, "out_act": "linear" if arch == "sda" else None}
    wt.install({f"net.{k}": v for k, v in net.state_dict().items()}, meta, name)
    return net.eval()


@pytest.mark.parametrize("arch", ["reconnet", "reconnet-enhanced", "sda"])
def test_fully_connected_front_ends_run_at_their_own_ratio_only(trained, arch):
    name = f"test-{arch}_r0.1"  # not the zoo's name: those are shipped in the package
    net = _install_fresh(arch, arch, 0.1, name)
    img = np.random.default_rng(2).random((50, 40))
    prob = Problem.from_image(img, 0.1)
    rec = get_method(arch, weights=name).reconstruct(prob)
    with torch.no_grad():
        direct = net(torch.tensor(prob.y, dtype=torch.float32)).x.double().numpy()
    assert np.allclose(rec, prob.to_image(direct), atol=1e-5)
    with pytest.raises(WeightsError, match="M=109"):
        get_method(arch, weights=name).reconstruct(Problem.from_image(img, 0.25))


def test_cuda_device_request_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(CSBenchError, match="CUDA is not available"):
        _ = get_method("ista-net", device="cuda").device


def test_weights_trained_with_a_users_phi_accept_only_that_phi(trained, tmp_path):
    Phi = _orthonormal_rows(109, seed=3)
    np.save(tmp_path / "phi.npy", Phi)
    cfg = TrainConfig(method="ista-net", ratio=0.1, phases=1, nf=4, epochs=1, batch=64,
                      recipe=RECIPE, phi_path=str(tmp_path / "phi.npy"), name="user-phi",
                      out=str(tmp_path / "run"), device="cpu", precision="fp32",
                      checkpoint_every=0)
    res = train(cfg, progress=False, log=lambda *a: None)
    assert wt.read_meta(res["weights"])["phi"]["kind"] == "stored"
    assert np.array_equal(wt.read_tensors(res["weights"])["Phi"].numpy(), Phi)
    img = np.random.default_rng(4).random((40, 50))
    rec = get_method("ista-net", weights="user-phi").reconstruct(
        Problem.from_image(img, 0.1, Phi=Phi))
    assert rec.shape == img.shape and np.all(np.isfinite(rec))
    with pytest.raises(CSBenchError, match="own Phi"):
        get_method("ista-net", weights="user-phi").reconstruct(Problem.from_image(img, 0.1))


def test_batch_size_does_not_change_the_reconstruction():
    img = np.random.default_rng(3).random((99, 132))  # 12 blocks
    p = Problem.from_image(img, 0.25)
    ref = get_method("ista-net", phases=1, nf=4, batch=1).reconstruct(p)
    for b in (None, 5, 1024):
        rec = get_method("ista-net", phases=1, nf=4, batch=b).reconstruct(p)
        assert np.allclose(rec, ref, atol=1e-5)
    with pytest.raises(CSBenchError, match="batch must be at least 1"):
        get_method("ista-net", phases=1, nf=4, batch=-2).reconstruct(p)
