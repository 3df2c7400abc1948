"""The method interface every reconstructor implements.

A method is a class registered with :func:`cs_bench.registry.register`. It declares

* ``family``: ``"classical"`` or ``"learned"``;
* ``scopes``: the scopes it supports, first one the default. ``"block"`` reconstructs
  every block independently (the papers' protocol); ``"image"`` reconstructs the whole
  image from the same block measurements;
* ``params``: its parameters with defaults (``None`` = chosen from the ratio);
* ``param_types``: the type (int, float or str) of every parameter whose default is ``None``,
  so the command line can convert and check its values (str when not listed);

and implements :meth:`Method.reconstruct`, which takes a :class:`~cs_bench.problem.Problem`
and returns the image (H x W, pixels on the [0, 1] scale).
"""

import json

from .errors import CSBenchError


class Method:
    name = ""  # set by @register
    family = "classical"
    scopes = ("block",)
    params = {}
    param_types = {}
    #: one-line description shown by ``cs-bench list``
    summary = ""

    def __init__(self, scope=None, **params):
        if scope is None:
            scope = self.scopes[0]
        if scope not in self.scopes:
            raise CSBenchError(
                f"method '{self.name}' does not support scope '{scope}'; "
                f"it supports: {', '.join(self.scopes)}"
            )
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            valid = ", ".join(sorted(self.params)) or "none"
            raise CSBenchError(
                f"method '{self.name}' has no parameter '{unknown[0]}'; valid: {valid}"
            )
        self.scope = scope
        self.p = {**self.params, **params}

    # -- identity (used as the cache key and in results) ------------------------------
    @property
    def weights_id(self):
        """Content id of the weights a learned method uses (None for classical ones)."""
        return None

    def weights_id_for(self, ratio):
        """Content id of the weights used for a run at ``ratio`` (the runner's cache key);
        a one-line CSBenchError if they are missing or damaged. Default: :attr:`weights_id`."""
        return self.weights_id

    @property
    def device(self):
        return "cpu"

    def params_json(self):
        return json.dumps(self.p, sort_keys=True, default=str)

    def reconstruct(self, problem):  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(scope={self.scope!r}, {self.params_json()})"
