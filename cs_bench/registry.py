"""The method registry: ``@register(name)``, :func:`list_methods`, :func:`get_method`.

Every method module is imported here, in :data:`METHOD_MODULES`, so registration can never
silently miss one (a test checks that every module in ``baselines/`` and ``learned/``
that registers a method is listed). Methods from outside the package (plugin files,
``$CS_BENCH_PLUGINS``, the ``cs_bench.methods`` entry points) come in through
:mod:`cs_bench.plugins`, after the built-in ones.

>>> "ista-wavelet" in list_methods()
True
>>> get_method("ista-wavlet")
Traceback (most recent call last):
...
cs_bench.errors.CSBenchError: unknown method 'ista-wavlet' (did you mean 'ista-wavelet'?); valid: ...
"""

import importlib

from . import plugins as _plugins  # noqa: F401 - lets --jobs workers import plugin modules
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

_builtin_loaded = False
_loaded = False


def register(name):
    """Class decorator registering a :class:`~cs_bench.method.Method` under ``name``.

    Defining the same class again (same module and name: a notebook cell run twice, a
    reloaded plugin) replaces it; another class taking a registered name is an error.
    """

    def deco(cls):
        old = _REGISTRY.get(name)
        if old is not None and old is not cls and (old.__module__, old.__qualname__) != (
                cls.__module__, cls.__qualname__):
            raise CSBenchError(f"method name '{name}' is already registered by "
                               f"{old.__module__}.{old.__qualname__}; pick another name")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def load_builtin():
    """Import every module of :data:`METHOD_MODULES` (once)."""
    global _builtin_loaded
    if _builtin_loaded:
        return
    for mod in METHOD_MODULES:
        importlib.import_module(mod)  # a listed module that fails to import is an error
    _builtin_loaded = True


def _load_all():
    """The built-in methods, then ``$CS_BENCH_PLUGINS`` and entry points (once)."""
    global _loaded
    if _loaded:
        return
    load_builtin()
    _loaded = True
    from .plugins import load_environment

    load_environment()


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
