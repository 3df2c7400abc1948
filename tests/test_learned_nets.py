"""The learned networks: shapes, the ISTA-Net equations, FISTA-Net, the losses."""

import copy

import pytest
import torch
import torch.nn.functional as F

from cs_bench.learned.losses import loss_terms
from cs_bench.learned.nets import ARCH_OF, UNROLLED, BlockOperator, ISTANet, build, soft
from cs_bench.sensing import make_phi


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _op(ratio):
    Phi = torch.tensor(make_phi(ratio), dtype=torch.float32)
    return BlockOperator(Phi, Phi.T.contiguous())


@pytest.mark.parametrize("arch", sorted(set(ARCH_OF.values())))
@pytest.mark.parametrize("ratio", [0.01, 0.1, 0.25, 0.5])
def test_every_network_maps_m_measurements_to_a_block(arch, ratio):
    torch.manual_seed(0)
    op = _op(ratio)
    net = build(arch, op.M, phases=2, nf=4)
    y = torch.rand(3, op.M)
    out = net(y, op)
    assert out.x.shape == (3, 1089)
    assert out.x.dtype == torch.float32
    assert torch.isfinite(out.x).all()
    assert len(out.phases) == (2 if arch in UNROLLED else 1)


def test_reconnet_layers_and_the_enhanced_variant():
    torch.manual_seed(0)
    plain, enh = build("reconnet", 109), build("reconnet-enhanced", 109)
    enh.load_state_dict(plain.state_dict())
    shapes = {k: tuple(v.shape) for k, v in plain.state_dict().items()}
    assert shapes["fc.weight"] == (1089, 109) and shapes["fc.bias"] == (1089,)
    assert shapes["conv1.weight"] == (64, 1, 11, 11) and shapes["conv2.weight"] == (32, 64, 1, 1)
    assert shapes["conv3.weight"] == (1, 32, 7, 7) and shapes["conv6.weight"] == (1, 32, 7, 7)
    # make conv3's output negative somewhere: only the ReLU after it differs
    with torch.no_grad():
        plain.conv3.bias.fill_(-0.5)
        enh.conv3.bias.fill_(-0.5)
    y = torch.rand(4, 109)
    assert not torch.allclose(plain(y).x, enh(y).x)


def test_sda_layers_and_output_activation():
    net = build("sda", 272)
    assert [tuple(p.shape) for n, p in net.named_parameters() if n.endswith("weight")] == [
        (1089, 272), (272, 1089), (1089, 272)]
    sig = build("sda", 272, out_act="sigmoid")
    sig.load_state_dict(net.state_dict())
    y = torch.randn(5, 272)
    assert torch.allclose(sig(y).x, torch.sigmoid(net(y).x), atol=1e-6)
    with pytest.raises(ValueError):
        build("sda", 272, out_act="tanh")


def test_soft_thresholding():
    u = torch.tensor([-3.0, -1.0, -0.2, 0.0, 0.2, 1.0, 3.0])
    assert soft(u, 0.5).tolist() == [-2.5, -0.5, 0.0, 0.0, 0.0, 0.5, 2.5]
    assert soft(u, 0.0).tolist() == u.tolist()
    # shrinkage never changes a sign and never grows a magnitude
    v = torch.randn(1000)
    s = soft(v, 0.3)
    assert ((s == 0) | (torch.sign(s) == torch.sign(v))).all()
    assert (s.abs() <= v.abs()).all()


def _reference_ista(net, y, Phi, Qinit):
    """ISTA-Net restated from the paper's equations with plain conv2d calls."""
    x = y @ Qinit.T  # Eq. 13
    for ph in net.layers:
        r = x - ph.rho * ((x @ Phi.T - y) @ Phi)  # Eq. 4
        r = r.reshape(-1, 1, 33, 33)
        u = F.conv2d(F.relu(F.conv2d(r, ph.F1, padding=1)), ph.F2, padding=1)
        u = torch.sign(u) * torch.clamp(u.abs() - ph.theta, min=0)
        x = F.conv2d(F.relu(F.conv2d(u, ph.G1, padding=1)), ph.G2, padding=1).reshape(-1, 1089)
    return x


def test_ista_net_forward_is_the_equations():
    torch.manual_seed(1)
    Phi = torch.tensor(make_phi(0.1), dtype=torch.float32)
    Qinit = torch.randn(1089, Phi.shape[0]) * 0.05
    net = build("ista-net", Phi.shape[0], phases=3, nf=6)
    with torch.no_grad():
        for i, ph in enumerate(net.layers):
            ph.rho.fill_(0.3 + 0.1 * i)
            ph.theta.fill_(0.02 * (i + 1))
    y = torch.rand(7, 1089) @ Phi.T
    with torch.no_grad():
        ours = net(y, BlockOperator(Phi, Qinit)).x
        ref = _reference_ista(net, y, Phi, Qinit)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_fista_net_with_zero_momentum_is_ista_net_exactly():
    torch.manual_seed(2)
    op = _op(0.25)
    ista = ISTANet(phases=3, nf=5)
    fista = ISTANet(phases=3, nf=5, momentum=True)
    fista.load_state_dict(ista.state_dict(), strict=False)
    assert all(ph.mu.item() == 0.0 for ph in fista.layers)
    y = torch.rand(6, op.M)
    a, b = ista(y, op), fista(y, op)
    assert torch.equal(a.x, b.x)
    assert all(torch.equal(p, q) for p, q in zip(a.phases, b.phases))
    # and a non-zero momentum does change the output
    with torch.no_grad():
        fista.layers[1].mu.fill_(0.5)
    assert not torch.allclose(fista(y, op).x, a.x)


def test_fista_momentum_step_is_the_extrapolation():
    """Phase 2 of FISTA-Net takes its gradient step at x1 + mu (x1 - x0) (Sec. 3.4)."""
    torch.manual_seed(3)
    op = _op(0.25)
    net = ISTANet(phases=2, nf=4, momentum=True)
    with torch.no_grad():
        net.layers[1].mu.fill_(0.7)
    y = torch.rand(2, op.M)
    x0 = op.initial(y)
    ph0, ph1 = net.layers
    PhiTy = op.PhiTy(y)

    def prox(ph, r):
        r = r.reshape(-1, 1, 33, 33)
        return ph.G(soft(ph.F(r), ph.theta)).reshape(-1, 1089)

    x1 = prox(ph0, op.gradient_step(x0 + ph0.mu * 0, ph0.rho, PhiTy))
    z1 = x1 + 0.7 * (x1 - x0)
    x2 = prox(ph1, op.gradient_step(z1, ph1.rho, PhiTy))
    assert torch.allclose(net(y, op).x, x2, atol=1e-6)


def test_lstar_at_one_phase_equals_l():
    torch.manual_seed(4)
    op = _op(0.25)
    net = ISTANet(phases=1, nf=4)
    x = torch.rand(5, 1089)
    out = net(x @ op.Phi.T, op, sym="block", s=x)
    a = loss_terms(out, x, "L", 0.01)["loss"]
    b = loss_terms(out, x, "Lstar", 0.01)["loss"]
    assert torch.equal(a, b)
    # with three phases L* adds the earlier phases' errors
    net3 = ISTANet(phases=3, nf=4)
    out3 = net3(x @ op.Phi.T, op, sym="block", s=x)
    assert loss_terms(out3, x, "Lstar", 0.01)["loss"] > loss_terms(out3, x, "L", 0.01)["loss"]


def test_symmetry_term_forms():
    torch.manual_seed(5)
    op = _op(0.25)
    net = ISTANet(phases=2, nf=4)
    x = torch.rand(3, 1089)
    y = x @ op.Phi.T
    blk = net(y, op, sym="block", s=x)
    phs = net(y, op, sym="phase_input")
    s = x.reshape(-1, 1, 33, 33)
    for k, ph in enumerate(net.layers):
        assert torch.allclose(blk.sym[k], ph.G(ph.F(s)) - s, atol=1e-6)
    assert not torch.allclose(blk.sym[0], phs.sym[0])
    t = loss_terms(blk, x, "L", 0.01)
    expected = torch.mean((blk.x - x) ** 2) + 0.01 * sum(torch.mean(r ** 2) for r in blk.sym)
    assert torch.allclose(t["loss"], expected)
    assert torch.equal(loss_terms(blk, x, "L", 0.0)["loss"], t["mse"])


def test_gradient_step_stays_float32_under_bf16_autocast():
    torch.manual_seed(6)
    op = _op(0.25)
    net = ISTANet(phases=2, nf=4)
    x = torch.rand(4, 1089)
    y = x @ op.Phi.T
    ref = net(y, op).x
    with torch.autocast("cpu", dtype=torch.bfloat16):
        r = op.gradient_step(x, torch.tensor(0.5), op.PhiTy(y))
        low = net(y, op).x
    assert r.dtype == torch.float32
    assert low.dtype == torch.float32
    assert torch.allclose(low, ref, atol=0.05)


def test_channels_last_weights_give_the_same_values():
    torch.manual_seed(7)
    op = _op(0.1)
    net = build("ista-net", op.M, phases=2, nf=4)
    plain = copy.deepcopy(net).to(memory_format=torch.contiguous_format)
    y = torch.rand(3, op.M)
    assert torch.allclose(net(y, op).x, plain(y, op).x, atol=1e-6)
