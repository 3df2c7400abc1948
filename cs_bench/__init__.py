"""cs-bench: block compressive-sensing benchmark (classical solvers and learned networks).

>>> from cs_bench import get_method, list_methods
>>> "fista-wavelet" in list_methods()
True
"""

__version__ = "0.1.0"

from .errors import CSBenchError  # noqa: E402
from .problem import Problem  # noqa: E402
from .registry import get_method, list_methods, register  # noqa: E402

__all__ = ["CSBenchError", "Problem", "get_method", "list_methods", "register", "__version__"]
