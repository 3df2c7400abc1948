"""The one block CS operator: A and At are adjoint in block and image form, numpy and torch,
and every user of Phi goes through it."""

import numpy as np
import pytest
import torch

from cs_bench.operator import BlockCS
from cs_bench.problem import Problem
from cs_bench.sensing import make_phi


@pytest.mark.parametrize("ratio", [0.01, 0.1, 0.25, 1.0])
def test_adjoint_in_block_and_image_form(ratio):
    rng = np.random.default_rng(1)
    op = BlockCS(make_phi(ratio), padded_shape=(66, 99))
    X = rng.standard_normal((6, 1089))
    Y = rng.standard_normal((6, op.M))
    assert np.isclose(np.sum(op.A(X) * Y), np.sum(X * op.At(Y)))
    img = rng.standard_normal((66, 99))
    assert np.isclose(np.sum(op.A_image(img) * Y), np.sum(img * op.At_image(Y)))
    assert np.allclose(op.AtA(X), op.At(op.A(X)))


def test_torch_form_matches_numpy_and_keeps_its_dtype():
    op = BlockCS(make_phi(0.25))
    X = np.random.default_rng(0).random((4, 1089))
    t64 = op.torch()
    assert np.allclose(t64.A(torch.from_numpy(X)).numpy(), op.A(X))
    t32 = op.torch(torch.float32)
    y = t32.A(torch.from_numpy(X).float())
    assert y.dtype == torch.float32 and np.allclose(y.numpy(), op.A(X), atol=1e-5)
    x, yy = torch.rand(3, 1089, dtype=torch.float32), torch.rand(3, op.M, dtype=torch.float32)
    assert torch.isclose((t32.A(x) * yy).sum(), (x * t32.At(yy)).sum(), rtol=1e-4)


def test_problem_and_the_learned_operator_use_it():
    from cs_bench.learned.nets import BlockOperator

    img = np.random.default_rng(2).random((40, 50))
    p = Problem.from_image(img, 0.25)
    assert isinstance(p.op, BlockCS)
    padded = p.to_padded(np.zeros((p.n_blocks, 1089))) + 1.0
    assert np.allclose(p.A(padded), p.op.A(p.to_blocks(padded)))
    Phi = torch.tensor(p.Phi, dtype=torch.float32)
    lop = BlockOperator(Phi, Phi.T)
    assert isinstance(lop, BlockCS) and lop.M == p.M
    y = torch.tensor(p.y, dtype=torch.float32)
    x0 = lop.initial(y)
    assert torch.allclose(lop.gradient_step(x0, 0.5, lop.PhiTy(y)),
                          x0 - 0.5 * (x0 @ Phi.T @ Phi - y @ Phi), atol=1e-5)


def test_an_operator_without_an_image_shape_says_so():
    with pytest.raises(ValueError, match="no image shape"):
        BlockCS(make_phi(0.1)).At_image(np.zeros((1, 109)))
