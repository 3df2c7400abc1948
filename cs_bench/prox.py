"""The proximal operator of the l1 norm, shared by the classical solvers and the networks.

soft(u, theta) = sign(u) max(|u| - theta, 0) = argmin_x 1/2 ||x - u||^2 + theta ||x||_1,
elementwise, on numpy arrays and on torch tensors alike (a tensor keeps its autograd graph;
theta may be a learned tensor, as in ISTA-Net's Eq. (10)).

>>> import numpy as np
>>> soft(np.array([-2.0, -0.5, 0.0, 0.5, 2.0]), 1.0).tolist()
[-1.0, -0.0, 0.0, 0.0, 1.0]
"""

import numpy as np


def soft(u, theta):
    """Soft thresholding sign(u) max(|u| - theta, 0) of an array or tensor ``u``."""
    if isinstance(u, np.ndarray) or np.isscalar(u):
        return np.sign(u) * np.maximum(np.abs(u) - theta, 0.0)
    import torch

    return torch.sign(u) * torch.relu(torch.abs(u) - theta)
