"""The learned reconstructors as torch modules: ISTA-Net, FISTA-Net, ReconNet, SDA.

All networks work on blocks: a block batch is ``(batch, 1089)``, the row-major
vectorisation of ``(batch, 1, 33, 33)``, and measurements are rows ``y = Phi x``
(``Y = X Phi^T``).

ISTA-Net (Zhang & Ghanem, CVPR 2018). Phase k (k = 1..Np) has its own step rho(k),
threshold theta(k) and transforms F(k), G(k) (Fig. 3):

* gradient step, Eq. (4):  r(k) = x(k-1) - rho(k) Phi^T (Phi x(k-1) - y)
* proximal step, Eq. (10): x(k) = G(k)( soft(F(k)(r(k)), theta(k)) )
  with soft(u, theta) = sign(u) max(|u| - theta, 0),
  F(k) = conv3x3(1->Nf) -> ReLU -> conv3x3(Nf->Nf),
  G(k) = conv3x3(Nf->Nf) -> ReLU -> conv3x3(Nf->1), no biases, zero padding 1;
* initialisation, Eq. (13): x(0) = Qinit y (Qinit from :mod:`cs_bench.learned.qinit`).

FISTA-Net (Sec. 3.4) takes the gradient step at the extrapolated point
z(k-1) = x(k-1) + mu(k) (x(k-1) - x(k-2)), x(-1) = x(0), with one learnable mu(k) per
phase; with every mu(k) = 0 it is ISTA-Net exactly.

ISTA-Net+ (CVPR 2018, Sec. 3.2) works in the residual domain: after the same gradient step
r(k), a 3x3 convolution D(k) (1->Nf) lifts r(k) to features d(k); the proximal step
transforms them with F(k) = conv3x3(Nf->Nf) -> ReLU -> conv3x3(Nf->Nf), thresholds, maps back
with G~(k) of the same form, and a 3x3 convolution G(k) (Nf->1) gives the residual:

* x(k) = r(k) + G(k)( G~(k)( soft(F(k)(D(k)(r(k))), theta(k)) ) )   (Eq. 17 of the CVPR paper)
* symmetry residual per phase: G~(k)(F(k)(d)) - d (the constraint G~ o F = I).

ReconNet (Kulkarni et al., CVPR 2016): FC M->1089 then two blocks of convolutions
11x11 (1->64), 1x1 (64->32), 7x7 (32->1), "same" padding, biases, ReLU after every
convolution but the last. Enhanced ReconNet drops the ReLU after the third convolution.

SDA (Mousavi, Patel & Baraniuk, 2015): a fully connected decoder M->N->M->N with sigmoid
hidden activations. The output layer is linear by default (``out_act="linear"``): a
sigmoid output saturates on the many pure-black / pure-white pixels of natural images and
its gradient vanishes there, whereas PSNR clips the output to [0, 1] anyway; a linear
output also contains the linear (Qinit-like) estimate the network must at least match.
``out_act="sigmoid"`` gives the all-sigmoid variant.

>>> import torch
>>> from cs_bench.sensing import make_phi
>>> Phi = torch.tensor(make_phi(0.25), dtype=torch.float32)
>>> net = ISTANet(phases=2, nf=8)
>>> x = torch.rand(5, 1089)
>>> y = x @ Phi.T
>>> out = net(y, BlockOperator(Phi, Phi.T))       # Qinit = Phi^T here, for the example
>>> out.x.shape, len(out.phases)
(torch.Size([5, 1089]), 2)
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cs_bench.operator import BlockCS
from cs_bench.prox import soft
from cs_bench.sensing import BLOCK, N

def __getattr__(name):
    # ARCH_OF, UNROLLED and build live with the specs (learned/spec.py); kept reachable here
    if name in ("ARCH_OF", "UNROLLED", "build"):
        from . import spec

        return getattr(spec, name)
    raise AttributeError(name)


class BlockOperator(BlockCS):
    """The block CS operator of one ratio in float32 torch, with Qinit (N x M).

    ``gradient_step`` computes Eq. (4) in row form, r = x - rho (x Phi^T Phi - y Phi),
    with ``PhiTPhi`` formed once and ``PhiTy = y Phi`` once per batch. It runs in float32
    even under bf16 autocast: only the convolutions run in reduced precision.
    """

    def __init__(self, Phi, Qinit):
        super().__init__(Phi.float())
        self.Qinit = Qinit.float()  # N x M
        self._PhiTPhi = self.Phi.T @ self.Phi

    def to(self, device):
        return BlockOperator(self.Phi.to(device), self.Qinit.to(device))

    def initial(self, y):
        """x(0) = Qinit y (Eq. 13), row form Y Qinit^T."""
        return y.float() @ self.Qinit.T

    def PhiTy(self, y):
        return self.At(y.float())

    def gradient_step(self, x, rho, PhiTy):
        with torch.autocast(x.device.type, enabled=False):
            x = x.float()
            return x - rho * (self.AtA(x) - PhiTy)


@dataclass
class Output:
    """What a network returns: the final blocks ``x`` (batch x N), each phase's output
    ``phases`` (for L*, Eq. 15) and each phase's symmetry residual ``sym`` (for Eq. 14;
    None when not asked for)."""

    x: torch.Tensor
    phases: list
    sym: list = None


def _xavier(*shape):
    return nn.Parameter(nn.init.xavier_normal_(torch.empty(*shape)))


class Phase(nn.Module):
    """One ISTA-Net phase: rho, theta, F = (F1, F2), G = (G1, G2) and, for FISTA-Net, mu.

    Parameter names and initialisation follow the authors' release (rho 0.5,
    theta 0.01, Xavier-normal convolutions) so their checkpoints map one to one.
    """

    def __init__(self, nf=32, momentum=False, mu_init=0.0):
        super().__init__()
        self.rho = nn.Parameter(torch.tensor([0.5]))
        self.theta = nn.Parameter(torch.tensor([0.01]))
        self.F1 = _xavier(nf, 1, 3, 3)
        self.F2 = _xavier(nf, nf, 3, 3)
        self.G1 = _xavier(nf, nf, 3, 3)
        self.G2 = _xavier(1, nf, 3, 3)
        if momentum:
            self.mu = nn.Parameter(torch.tensor([float(mu_init)]))

    def F(self, u):
        return F.conv2d(F.relu(F.conv2d(u, self.F1, padding=1)), self.F2, padding=1)

    def G(self, u):
        return F.conv2d(F.relu(F.conv2d(u, self.G1, padding=1)), self.G2, padding=1)


class ISTANet(nn.Module):
    """ISTA-Net (``momentum=False``) or FISTA-Net (``momentum=True``) with Np phases.

    ``forward(y, op, sym=None, s=None)``: ``y`` is batch x M, ``op`` a
    :class:`BlockOperator`. ``sym="phase_input"`` returns G(k)(F(k)(r(k))) - r(k) per
    phase (the authors' code), ``sym="block"`` returns G(k)(F(k)(s)) - s for the
    training blocks ``s`` (the paper's Eq. 14).
    """

    def __init__(self, phases=9, nf=32, momentum=False, mu_init=0.0):
        super().__init__()
        if phases < 1 or nf < 1:
            raise ValueError("phases and nf must be >= 1")
        self.momentum = bool(momentum)
        self.layers = nn.ModuleList(Phase(nf, momentum, mu_init) for _ in range(phases))

    @property
    def n_phases(self):
        return len(self.layers)

    def forward(self, y, op, sym=None, s=None):
        PhiTy = op.PhiTy(y)
        x = op.initial(y)
        x_prev = x  # x(-1) = x(0)
        phases, syms = [], []
        s_img = None if s is None else s.reshape(-1, 1, BLOCK, BLOCK)
        for layer in self.layers:
            if self.momentum:
                z = x + layer.mu * (x - x_prev)  # Sec. 3.4
            else:
                z = x
            r = op.gradient_step(z, layer.rho, PhiTy)  # Eq. (4)
            r_img = r.reshape(-1, 1, BLOCK, BLOCK)
            u = layer.F(r_img)
            x_new = layer.G(soft(u, layer.theta)).reshape(-1, N).float()  # Eq. (10)
            if sym == "phase_input":
                syms.append(layer.G(u) - r_img)
            elif sym == "block":
                syms.append(layer.G(layer.F(s_img)) - s_img)
            elif sym is not None:
                raise ValueError(f"unknown sym input '{sym}'")
            x_prev, x = x, x_new
            phases.append(x)
        return Output(x, phases, syms if sym is not None else None)


class PlusPhase(nn.Module):
    """One ISTA-Net+ phase: rho, theta, D, F = (F1, F2), G~ = (Gt1, Gt2), G (no biases)."""

    def __init__(self, nf=32):
        super().__init__()
        self.rho = nn.Parameter(torch.tensor([0.5]))
        self.theta = nn.Parameter(torch.tensor([0.01]))
        self.D = _xavier(nf, 1, 3, 3)
        self.F1 = _xavier(nf, nf, 3, 3)
        self.F2 = _xavier(nf, nf, 3, 3)
        self.Gt1 = _xavier(nf, nf, 3, 3)
        self.Gt2 = _xavier(nf, nf, 3, 3)
        self.G = _xavier(1, nf, 3, 3)

    def F(self, u):
        return F.conv2d(F.relu(F.conv2d(u, self.F1, padding=1)), self.F2, padding=1)

    def Gt(self, u):
        return F.conv2d(F.relu(F.conv2d(u, self.Gt1, padding=1)), self.Gt2, padding=1)


class ISTANetPlus(nn.Module):
    """ISTA-Net+ with Np phases (see the module docstring), same interface as :class:`ISTANet`.

    ``sym="phase_input"`` returns G~(k)(F(k)(d(k))) - d(k) with d(k) = D(k)(r(k)) (the
    authors' code), ``sym="block"`` the same with d = D(k)(s) for the training blocks s.

    >>> import torch
    >>> from cs_bench.sensing import make_phi
    >>> Phi = torch.tensor(make_phi(0.25), dtype=torch.float32)
    >>> net = ISTANetPlus(phases=2, nf=4)
    >>> for p in net.parameters():       # D, F, G~, G all zero: x(k) = r(k), the gradient step
    ...     _ = p.data.zero_() if p.dim() == 4 else None
    >>> x = torch.rand(3, 1089); y = x @ Phi.T
    >>> op = BlockOperator(Phi, Phi.T)
    >>> r = op.gradient_step(op.initial(y), 0.5, op.PhiTy(y))
    >>> bool(torch.allclose(net(y, op).phases[0], r))
    True
    """

    def __init__(self, phases=9, nf=32):
        super().__init__()
        if phases < 1 or nf < 1:
            raise ValueError("phases and nf must be >= 1")
        self.momentum = False
        self.layers = nn.ModuleList(PlusPhase(nf) for _ in range(phases))

    @property
    def n_phases(self):
        return len(self.layers)

    def forward(self, y, op, sym=None, s=None):
        PhiTy = op.PhiTy(y)
        x = op.initial(y)
        phases, syms = [], []
        s_img = None if s is None else s.reshape(-1, 1, BLOCK, BLOCK)
        for layer in self.layers:
            r = op.gradient_step(x, layer.rho, PhiTy)  # Eq. (4)
            r_img = r.reshape(-1, 1, BLOCK, BLOCK)
            d = F.conv2d(r_img, layer.D, padding=1)
            u = layer.F(d)
            v = layer.Gt(soft(u, layer.theta))
            x = (r_img + F.conv2d(v, layer.G, padding=1)).reshape(-1, N).float()  # Eq. (17)
            if sym == "phase_input":
                syms.append(layer.Gt(u) - d)
            elif sym == "block":
                ds = F.conv2d(s_img, layer.D, padding=1)
                syms.append(layer.Gt(layer.F(ds)) - ds)
            elif sym is not None:
                raise ValueError(f"unknown sym input '{sym}'")
            phases.append(x)
        return Output(x, phases, syms if sym is not None else None)


class ReconNet(nn.Module):
    """ReconNet (``enhanced=False``) or Enhanced ReconNet (no ReLU after conv 3).

    >>> ReconNet(m=109)(torch.rand(3, 109)).x.shape
    torch.Size([3, 1089])
    """

    def __init__(self, m, enhanced=False):
        super().__init__()
        self.m = m
        self.enhanced = bool(enhanced)
        self.fc = nn.Linear(m, N)
        self.conv1 = nn.Conv2d(1, 64, 11, padding=5)
        self.conv2 = nn.Conv2d(64, 32, 1)
        self.conv3 = nn.Conv2d(32, 1, 7, padding=3)
        self.conv4 = nn.Conv2d(1, 64, 11, padding=5)
        self.conv5 = nn.Conv2d(64, 32, 1)
        self.conv6 = nn.Conv2d(32, 1, 7, padding=3)

    def forward(self, y, op=None, sym=None, s=None):
        u = self.fc(y.float()).reshape(-1, 1, BLOCK, BLOCK)
        u = F.relu(self.conv1(u))
        u = F.relu(self.conv2(u))
        u = self.conv3(u)
        if not self.enhanced:
            u = F.relu(u)
        u = F.relu(self.conv4(u))
        u = F.relu(self.conv5(u))
        x = self.conv6(u).reshape(-1, N).float()
        return Output(x, [x])


class SDA(nn.Module):
    """Stacked denoising autoencoder decoder M -> N -> M -> N (sigmoid hidden layers).

    >>> SDA(m=109)(torch.rand(3, 109)).x.shape
    torch.Size([3, 1089])
    """

    def __init__(self, m, out_act="linear"):
        super().__init__()
        if out_act not in ("linear", "sigmoid"):
            raise ValueError(f"unknown SDA output activation '{out_act}'")
        self.m = m
        self.out_act = out_act
        self.fc1 = nn.Linear(m, N)
        self.fc2 = nn.Linear(N, m)
        self.fc3 = nn.Linear(m, N)

    def forward(self, y, op=None, sym=None, s=None):
        h = torch.sigmoid(self.fc1(y.float()))
        h = torch.sigmoid(self.fc2(h))
        x = self.fc3(h)
        if self.out_act == "sigmoid":
            x = torch.sigmoid(x)
        x = x.float()
        return Output(x, [x])


def identity_init(net):
    """Start every phase of an ISTA-Net / FISTA-Net as pixelwise soft thresholding.

    Channel 0 of F carries ReLU(r), channel 1 ReLU(-r) (F1 = +-delta, F2 and G1 the
    identity on them), and G2 = delta (channel 0) - delta (channel 1), so
    G(soft(F(r), theta)) = soft(r, theta) and G(F(s)) = s exactly: at step 0 the network
    is Np projected gradient steps with a small shrinkage from x(0) = Qinit y, and the
    symmetry residual is zero. The other Nf - 2 channels keep their random weights but
    start without effect on the output (their G2 weights are zero; gradients reach them
    through G2 from the first step). Needs Nf >= 2.

    >>> net = identity_init(ISTANet(phases=1, nf=4))
    >>> r = torch.randn(2, 1, 33, 33)
    >>> bool(torch.allclose(net.layers[0].G(net.layers[0].F(r)), r, atol=1e-6))
    True
    """
    with torch.no_grad():
        for layer in net.layers:
            nf = layer.F1.shape[0]
            if nf < 2:
                raise ValueError("identity_init needs nf >= 2")
            for w in (layer.F1, layer.F2, layer.G1):
                w[:2].zero_()
            layer.G2.zero_()
            layer.F1[0, 0, 1, 1], layer.F1[1, 0, 1, 1] = 1.0, -1.0
            layer.F2[0, 0, 1, 1], layer.F2[1, 1, 1, 1] = 1.0, 1.0
            layer.G1[0, 0, 1, 1], layer.G1[1, 1, 1, 1] = 1.0, 1.0
            layer.G2[0, 0, 1, 1], layer.G2[0, 1, 1, 1] = 1.0, -1.0
    return net
