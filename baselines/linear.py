"""The minimum-norm linear reconstruction, the simplest reference any method must beat.

x = Phi^+ y = Phi^T (Phi Phi^T)^{-1} y, block by block (for orthonormal rows, Phi^T y).

>>> import numpy as np
>>> from cs_bench import Problem, get_method
>>> img = np.random.default_rng(0).random((33, 33))
>>> rec = get_method("min-norm").reconstruct(Problem.from_image(img, 1.0))
>>> bool(np.allclose(rec, img))
True
"""

import numpy as np

from cs_bench.errors import CSBenchError
from cs_bench.method import Method
from cs_bench.registry import register


def check_finite(problem):
    """One clear error for NaN/Inf measurements (shared by the classical solvers)."""
    if not np.all(np.isfinite(problem.y)):
        raise CSBenchError(f"{problem.name or 'image'}: measurements contain NaN or Inf")


@register("min-norm")
class MinNorm(Method):
    family = "classical"
    scopes = ("block", "image")
    params = {}
    summary = "minimum-norm least squares Phi^+ y (linear reference)"

    def reconstruct(self, problem):
        check_finite(problem)
        Phi = problem.Phi
        # Phi^+ = Phi^T (Phi Phi^T)^{-1}; lstsq handles rank-deficient user matrices too
        coef = np.linalg.lstsq(Phi @ Phi.T, problem.y.T, rcond=None)[0]
        X = (Phi.T @ coef).T
        return problem.to_image(X)
