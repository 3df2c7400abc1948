"""The method registry: ``@register(name)``, :func:`list_methods`, :func:`get_method`.

Every method module is imported here, in :data:`METHOD_MODULES`, so registration can never
silently miss one (a test checks that every module in ``baselines/`` and ``learned/``
that registers a method is listed).

>>> "ista-wavelet" in list_methods()
True
>>> get_method("ista-wavlet")
Traceback (most recent call last):
...
cs_bench.errors.CSBenchError: unknown method 'ista-wavlet' (did you mean 'ista-wavelet'?); valid: ...
"""

import importlib

from .errors import CSBenchError, unknown_name

_REGISTRY = {}

#: Every module that registers methods. Add new method modules here.
METHOD_MODULES = [
    "cs_bench.baselines.linear",
    "cs_bench.baselines.wavelet_ista",
    "cs_bench.baselines.tval3",
    "cs_bench.baselines.damp",
    "cs_bench.baselines.nlr_cs",
    "cs_bench.learned.models",
]

_loaded = False


def register(name):
    """Class decorator registering a :class:`~cs_bench.method.Method` under ``name``."""

    def deco(cls):
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise RuntimeError(f"method name '{name}' registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _load_all():
    global _loaded
    if _loaded:
        return
    for mod in METHOD_MODULES:
        importlib.import_module(mod)  # a listed module that fails to import is an error
    _loaded = True


def list_methods(family=None):
    """Sorted names of the registered methods (optionally of one family)."""
    _load_all()
    return sorted(n for n, c in _REGISTRY.items() if family is None or c.family == family)


def method_class(name):
    _load_all()
    if name not in _REGISTRY:
        raise unknown_name("method", name, _REGISTRY)
    return _REGISTRY[name]


def get_method(name, scope=None, **params):
    """Create the method ``name`` with ``params``; unknown names list the valid ones."""
    return method_class(name)(scope=scope, **params)


def parse_param(method_name, key, value):
    """Convert a CLI string value to the type of the parameter's default."""
    cls = method_class(method_name)
    if key not in cls.params:
        valid = ", ".join(sorted(cls.params)) or "none"
        raise CSBenchError(f"method '{method_name}' has no parameter '{key}'; valid: {valid}")
    default = cls.params[key]
    try:
        if isinstance(default, bool):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if default is None:
            if value.lower() == "none":
                return None
            kind = cls.param_types.get(key, str)
            return kind(value)
        return value
    except ValueError:
        kind = type(default) if default is not None else cls.param_types.get(key, str)
        raise CSBenchError(
            f"parameter {method_name}.{key}: '{value}' is not a valid {kind.__name__}"
        ) from None
