"""Run the docstring examples of every module (harness, baselines, learned)."""

import doctest
import importlib
import pkgutil

import pytest

import cs_bench

MODULES = sorted(
    f"{pkg}.{m.name}"
    for pkg in ("cs_bench", "cs_bench.baselines", "cs_bench.learned", "cs_bench.paper")
    for m in pkgutil.iter_modules(importlib.import_module(pkg).__path__)
    if not m.name.startswith("_") and m.name not in ("cli",)
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0


def test_package_doctest():
    assert doctest.testmod(cs_bench, optionflags=doctest.ELLIPSIS).failed == 0
