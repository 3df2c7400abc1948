"""The initialisation matrix Qinit of ISTA-Net (Eq. 11-13).

Given training blocks X (columns x_i) and their measurements Y = Phi X, Qinit is the
linear least-squares map from y to x (Eq. 11-12):

    Qinit = argmin_Q ||Q Y - X||_F^2 = X Y^T (Y Y^T)^-1.

With the second-moment matrix R = X X^T of the training blocks this is

    Qinit = R Phi^T (Phi R Phi^T)^-1,

so one N x N matrix R (computed once per training set and cached, see
:mod:`cs_bench.learned.trainset`) gives Qinit for every ratio's Phi: that is how a
model trained at ratio a runs at ratio b with Qinit_b "from the same training blocks".

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.random((200, 30))                 # 200 blocks (rows) of N = 30 pixels
>>> Phi = rng.standard_normal((5, 30))
>>> Q = qinit(second_moment(X), Phi)
>>> Q.shape
(30, 5)
>>> Y = X @ Phi.T
>>> bool(np.allclose(Q.T, np.linalg.lstsq(Y, X, rcond=None)[0]))
True

(The products run in torch, float64: torch honours ``torch.set_num_threads`` while
numpy's OpenBLAS threads, on a CPU shared with other busy processes, were measured 30x
slower than one thread.)
"""

import numpy as np


def second_moment(X, chunk=8192):
    """R = sum_i x_i x_i^T (float64) of blocks given as rows of ``X`` (n x N)."""
    import torch

    X = np.asarray(X)
    R = torch.zeros((X.shape[1], X.shape[1]), dtype=torch.float64)
    for i in range(0, X.shape[0], chunk):
        A = torch.from_numpy(np.asarray(X[i:i + chunk], dtype=np.float64))
        R += A.T @ A
    return R.numpy()


def qinit(R, Phi):
    """Qinit = R Phi^T (Phi R Phi^T)^-1 (N x M, float64) for the moment ``R``."""
    import torch

    R = torch.as_tensor(np.array(R, dtype=np.float64))
    Phi = torch.as_tensor(np.array(Phi, dtype=np.float64))
    RPt = R @ Phi.T  # N x M  (= X Y^T)
    YYt = Phi @ RPt  # M x M  (= Y Y^T), symmetric positive definite for enough blocks
    YYt = (YYt + YYt.T) / 2
    L, info = torch.linalg.cholesky_ex(YYt)
    if int(info) == 0:
        return torch.cholesky_solve(RPt.T, L).T.numpy()
    # fewer independent blocks than measurements: the minimum-norm solution
    return (RPt @ torch.linalg.pinv(YYt, hermitian=True)).numpy()
