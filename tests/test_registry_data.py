import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import cs_bench
import cs_bench.paper
from cs_bench import data
from cs_bench.errors import CSBenchError, DataError
from cs_bench.registry import METHOD_MODULES, get_method, list_methods, parse_param

ROOT = Path(__file__).resolve().parents[1]


def test_every_registering_module_is_listed():
    """A module under baselines/ or learned/ that registers a method must be in METHOD_MODULES."""
    for folder, pkg in (("baselines", "cs_bench.baselines"), ("learned", "cs_bench.learned")):
        for f in (ROOT / folder).glob("*.py"):
            if re.search(r"^@register\(", f.read_text(), re.M):
                assert f"{pkg}.{f.stem}" in METHOD_MODULES, f"{f} registers methods but is not listed"
    for mod in METHOD_MODULES:
        importlib.import_module(mod)  # every listed module imports


def test_unknown_method_suggests():
    with pytest.raises(CSBenchError, match=r"did you mean 'min-norm'.*valid: .*min-norm"):
        get_method("min-nrom")


def test_unknown_param_and_scope():
    with pytest.raises(CSBenchError, match="no parameter 'bogus'"):
        get_method("min-norm", bogus=1)
    with pytest.raises(CSBenchError, match="does not support scope"):
        get_method("min-norm", scope="volume")


def test_list_and_families():
    names = list_methods()
    assert "min-norm" in names and names == sorted(names)
    assert set(list_methods("classical")) <= set(names)


def test_parse_param_types():
    from cs_bench.method import Method
    from cs_bench.registry import _REGISTRY, register

    @register("_param-probe")
    class Probe(Method):
        params = {"iters": 10, "tau": 0.5, "flag": True, "mode": "a", "auto": None}

    try:
        assert parse_param("_param-probe", "iters", "7") == 7
        assert parse_param("_param-probe", "tau", "1e-3") == 1e-3
        assert parse_param("_param-probe", "flag", "false") is False
        assert parse_param("_param-probe", "mode", "b") == "b"
        assert parse_param("_param-probe", "auto", "none") is None
        with pytest.raises(CSBenchError, match="not a valid int"):
            parse_param("_param-probe", "iters", "x")
    finally:
        del _REGISTRY["_param-probe"]


def test_sha_registry_covers_public_sets():
    reg = data.sha256_registry()
    assert len(data.files("set11")) == 11 and len(data.files("t91")) == 91
    assert all(len(v) == 64 for v in reg.values())


def test_unknown_dataset():
    with pytest.raises(CSBenchError, match="unknown dataset 'set12'.*did you mean"):
        data.get_dataset("set12")


def test_skimage_dataset_offline():
    refs = data.image_refs("skimage")
    img = refs[0].load()
    assert img.ndim == 2 and 0 <= img.min() and img.max() <= 1


def test_set11_verified(data_dir):
    refs = data.image_refs("set11", data_dir)
    assert [r.name for r in refs][:2] == ["Monarch", "Parrots"]
    assert refs[2].load().shape == (256, 256)


def test_tampered_copy_is_refused(data_dir, tmp_path):
    (tmp_path / "Set11").mkdir()
    for rel, _ in data.files("set11"):
        (tmp_path / rel).write_bytes((data_dir / rel).read_bytes())
    victim = tmp_path / "Set11" / "house.tif"
    raw = bytearray(victim.read_bytes())
    raw[-10] ^= 0xFF
    victim.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="sha256 mismatch"):
        data.image_refs("set11", tmp_path)


def test_missing_and_offline_gives_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("CS_BENCH_DATA", raising=False)
    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path / "c"))
    import pooch

    def offline(*a, **k):
        raise ConnectionError("no network")

    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(DataError) as exc:
        data.image_refs("set11", tmp_path / "empty")
    msg = str(exc.value)
    assert "\n" not in msg and "CS_BENCH_DATA" in msg and "network" in msg


def test_package_modules_import_without_torch_until_needed():
    """Every module of the harness and the paper layer imports, and the command-line parser
    and the method list need no torch (they answer in well under a second)."""
    import subprocess
    import sys

    names = [f"cs_bench.{m.name}" for m in pkgutil.iter_modules(cs_bench.__path__)]
    names += [f"cs_bench.paper.{m.name}" for m in pkgutil.iter_modules(cs_bench.paper.__path__)]
    mods = [importlib.import_module(n) for n in names]
    assert len(mods) >= 20 and all(m.__doc__ for m in mods)
    code = ("import sys, cs_bench.cli as c; c.build_parser(); "
            "from cs_bench.registry import list_methods; assert 'ista-net' in list_methods(); "
            "print('torch' in sys.modules, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
