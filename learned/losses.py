"""Training losses: L (Eq. 14), L* (Eq. 15) and plain MSE.

With the N_b training blocks x_i, the network output x_i(Np) and phase outputs x_i(k):

* L  = 1/(N_b N) sum_i ||x_i(Np) - x_i||^2  +  gamma * L_sym          (Eq. 14)
* L* = sum_k 1/(N_b N) sum_i ||x_i(k) - x_i||^2  +  gamma * L_sym      (Eq. 15)
* L_sym = sum_k 1/(N_b N) sum_i ||G(k)(F(k)(s_i)) - s_i||^2

i.e. each squared norm is averaged over blocks and pixels (torch ``mean``) and summed
over phases, as the paper writes it and the authors' code computes it. The paper's s_i
is the training block x_i (``sym_input="block"``, our default); the authors' released
code uses each phase's input r(k) (``sym_input="phase_input"``). gamma = 0.01 in the
paper; gamma = 0 drops the constraint (and its cost). ReconNet and SDA train with MSE.

>>> import torch
>>> from cs_bench.learned.nets import Output
>>> x = torch.zeros(2, 4)
>>> out = Output(torch.ones(2, 4), [torch.full((2, 4), 2.0), torch.ones(2, 4)], None)
>>> terms = loss_terms(out, x, loss="L", gamma=0.0)
>>> float(terms["loss"]), float(loss_terms(out, x, loss="Lstar", gamma=0.0)["loss"])
(1.0, 5.0)
"""

import torch

LOSSES = ("L", "Lstar", "mse")
SYM_INPUTS = ("block", "phase_input")


def loss_terms(out, x, loss="L", gamma=0.01):
    """{"loss", "mse", "sym"}: the total loss and its parts (mse = final-output MSE)."""
    if loss not in LOSSES:
        raise ValueError(f"unknown loss '{loss}'; valid: {', '.join(LOSSES)}")
    x = x.float()
    mse = torch.mean((out.x.float() - x) ** 2)
    if loss == "Lstar":
        fit = sum(torch.mean((xk.float() - x) ** 2) for xk in out.phases)
    else:
        fit = mse
    sym = torch.zeros((), device=x.device)
    if gamma and out.sym:
        sym = sum(torch.mean(r.float() ** 2) for r in out.sym)
    total = fit + gamma * sym if gamma else fit
    return {"loss": total, "mse": mse, "sym": sym}


def needs_sym(arch, gamma):
    """Whether the forward pass must return the symmetry residuals."""
    from .spec import ARCHS

    return bool(gamma) and arch in ARCHS and ARCHS[arch].sym
