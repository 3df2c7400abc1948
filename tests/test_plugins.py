"""Plugins: --plugin files, $CS_BENCH_PLUGINS, the cs_bench.methods entry points, and the
method's part of the cache key (cs_bench.plugins)."""

import importlib
import linecache
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cs_bench import plugins, registry
from cs_bench.cli import main
from cs_bench.errors import CSBenchError
from cs_bench.method import Method

ROOT = Path(__file__).resolve().parents[1]


def doc_example():
    """The plugin example of docs/DEVELOPING.md, as the reader copies it."""
    text = (ROOT / "docs" / "DEVELOPING.md").read_text()
    block = re.search(r"<!-- plugin-example:start -->\s*```python\n(.*?)```", text, re.S)
    return block.group(1)


def test_doc_example_is_short_and_complete():
    code = doc_example()
    assert '@register("mine")' in code and "def reconstruct" in code
    assert len(code.strip().splitlines()) <= 25


def test_doc_example_runs_through_the_cli(tmp_path):
    """The README's promise: a method in mine.py, run beside a built-in one, no edit to the
    package. A separate process, so 'mine' stays out of this process's registry."""
    (tmp_path / "mine.py").write_text(doc_example())
    out = tmp_path / "mine.csv"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "cs_bench.cli", "run", "--plugin", "mine.py",
         "--methods", "mine,min-norm", "--dataset", "skimage", "--ratios", "0.25",
         "--images", "camera,text", "--out", str(out), "--no-progress"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(out)
    assert set(df.method) == {"mine", "min-norm"} and df.error.isna().all()
    mine = df[df.method == "mine"].psnr.mean()
    assert mine > df[df.method == "min-norm"].psnr.mean() + 10  # ~28 dB against ~7
    assert df[df.method == "mine"].code.notna().all()  # cached under its source's hash
    assert main(["plot", str(out)]) == 0  # and its figures, with no edit to the package
    assert (tmp_path / "mine_psnr_vs_seconds.svg").is_file()


BROKEN = "import not_a_module_anywhere\n"


def test_explicit_broken_plugin_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text(BROKEN)
    assert main(["--plugin", str(bad), "list"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "not_a_module_anywhere" in err[0]
    assert main(["list", "--plugin", str(tmp_path / "missing.py")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_syntax_error_names_the_line(tmp_path):
    bad = tmp_path / "typo.py"
    bad.write_text("x = 1\ndef f(:\n")
    with pytest.raises(CSBenchError, match=r"typo.py failed to load: SyntaxError.*\(line 2\)"):
        plugins.load_file(bad)


def test_broken_env_plugin_does_not_break_list(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text(BROKEN)
    monkeypatch.setenv(plugins.ENV, os.pathsep.join([str(bad), ""]))
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(plugins, "_reported", set())
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    assert "min-norm" in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "warning" in lines[0] and str(bad) in lines[0]


def test_env_plugin_registers(tmp_path, monkeypatch):
    f = tmp_path / "envmine.py"
    f.write_text(doc_example().replace('"mine"', '"_env-mine"'))
    monkeypatch.setenv(plugins.ENV, str(f))
    monkeypatch.setattr(registry, "_loaded", False)
    try:
        assert "_env-mine" in registry.list_methods()
        m = registry.get_method("_env-mine", keep=0.3)
        assert m.p["keep"] == 0.3 and registry.parse_param("_env-mine", "keep", "0.4") == 0.4
    finally:
        registry._REGISTRY.pop("_env-mine", None)


class _EP:
    def __init__(self, name, value, obj=None, exc=None):
        self.name, self.value, self._obj, self._exc = name, value, obj, exc

    def load(self):
        if self._exc:
            raise self._exc
        return self._obj


def test_entry_points(monkeypatch, capsys):
    class EPMethod(Method):
        summary = "from an entry point"

        def reconstruct(self, problem):
            return problem.to_image(problem.y @ problem.Phi)

    eps = [_EP("_ep-method", "pkg.mod:EPMethod", obj=EPMethod),
           _EP("_ep-broken", "broken.mod", exc=ImportError("no module named broken"))]
    monkeypatch.setattr(plugins, "_entry_points", lambda: eps)
    monkeypatch.setattr(plugins, "_reported", set())
    monkeypatch.delenv(plugins.ENV, raising=False)
    try:
        plugins.load_environment()
        assert registry.method_class("_ep-method") is EPMethod
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "_ep-broken = broken.mod" in err[0]
        assert "cs_bench.methods" in err[0]
    finally:
        registry._REGISTRY.pop("_ep-method", None)


def test_a_plugin_cannot_take_a_builtin_name(tmp_path):
    f = tmp_path / "thief.py"
    f.write_text(doc_example().replace('"mine"', '"tval3"'))
    with pytest.raises(CSBenchError, match="thief.py failed to load.*'tval3' is already registered"):
        plugins.load_file(f)
    assert registry.method_class("tval3").__module__ == "cs_bench.baselines.tval3"


def test_redefinition_replaces(tmp_path):
    ns = {}
    src = ("from cs_bench.method import Method\nfrom cs_bench.registry import register\n"
           "@register('_redef')\nclass R(Method):\n    params = {'a': %d}\n")
    try:
        exec(compile(src % 1, "<cell-1>", "exec"), ns)
        exec(compile(src % 2, "<cell-1>", "exec"), ns)  # the same cell run again
        assert registry.method_class("_redef").params == {"a": 2}
    finally:
        registry._REGISTRY.pop("_redef", None)


def test_worker_processes_can_import_a_plugin(tmp_path):
    """--jobs N: a worker unpickles a plugin's method by importing its module by name."""
    f = tmp_path / "pickled.py"
    f.write_text(doc_example().replace('"mine"', '"_pickled"'))
    try:
        mod = plugins.load_file(f)
        assert plugins.load_file(f) is mod  # loading twice loads once
        name = mod.__name__
        assert str(f.resolve()) in os.environ["_CS_BENCH_PLUGIN_FILES"]
        del sys.modules[name]  # as in a fresh worker process
        again = importlib.import_module(name)
        assert again.__file__ == str(f.resolve())
    finally:
        registry._REGISTRY.pop("_pickled", None)


# -- the cache key ------------------------------------------------------------------------
def test_code_id_of_a_file_method_is_the_runners(tmp_path):
    from cs_bench.runner import code_id

    f = tmp_path / "keyed.py"
    f.write_text(doc_example().replace('"mine"', '"_keyed"'))
    try:
        cls = plugins.load_file(f).LowpassDCT
        assert plugins.method_code_id(cls) == code_id(cls.__module__)
    finally:
        registry._REGISTRY.pop("_keyed", None)


def _cell(source, filename):
    """Define a class as a notebook does: its source in the line cache, no module file."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns = {"__name__": "__main__"}
    exec(compile(source, filename, "exec"), ns)
    return ns["Cell"]


def test_code_id_of_a_notebook_class_follows_its_source():
    src = ("from cs_bench.method import Method\nclass Cell(Method):\n"
           "    def reconstruct(self, problem):\n        return %s\n")
    a = plugins.method_code_id(_cell(src % "1", "<ipython-input-1>"))
    b = plugins.method_code_id(_cell(src % "2", "<ipython-input-2>"))
    assert a and b and a != b and a.startswith("src:")
    assert plugins.method_code_id(_cell(src % "1", "<ipython-input-3>")) == a


def test_code_id_without_source_is_none():
    ns = {"__name__": "__main__"}
    exec("from cs_bench.method import Method\nclass NoSource(Method):\n"
         "    def reconstruct(self, problem):\n        return 0\n", ns)
    assert plugins.method_code_id(ns["NoSource"]) is None  # never cached


# -- cs-bench info ------------------------------------------------------------------------
def test_info_of_a_plugin_method(tmp_path, capsys):
    f = tmp_path / "infomine.py"
    f.write_text(doc_example().replace('"mine"', '"_info-mine"'))
    try:
        assert main(["info", "_info-mine", "--plugin", str(f)]) == 0
        out = capsys.readouterr().out
        assert out.startswith("_info-mine: classical, scopes block (default)")
        assert re.search(r"keep\s+float\s+0.5", out) and str(f.name) in out
    finally:
        registry._REGISTRY.pop("_info-mine", None)


def test_info_of_a_learned_method_lists_its_weights(capsys):
    pytest.importorskip("torch")
    assert main(["info", "ista-net"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"phases\s+int\s+-", out)
    assert "default weights at ratios: " in out and "0.25" in out
    assert "ista-net_r0.25_np9_nf32" in out and "reconnet_r" not in out


def test_info_unknown_method_is_one_line(capsys):
    assert main(["info", "ista-nett"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean 'ista-net'" in err[0]


def _runner_uses_method_code_id():
    import inspect

    from cs_bench import runner

    return "method_code_id" in inspect.getsource(runner)


@pytest.mark.skipif(not _runner_uses_method_code_id(),
                    reason="the runner still hashes the method's module (runner.code_id)")
def test_a_method_without_source_is_never_cached():
    from cs_bench.runner import run

    ns = {"__name__": "_no_source_module"}
    exec("from cs_bench.method import Method\nfrom cs_bench.registry import register\n"
         "calls = []\n@register('_nosrc')\nclass NoSrc(Method):\n"
         "    def reconstruct(self, problem):\n        calls.append(1)\n"
         "        return problem.to_image(problem.y @ problem.Phi)\n", ns)
    try:
        for _ in range(2):
            df = run(["_nosrc"], "skimage", [0.25], images=["text"], progress=False)
            assert df.error.isna().all() and df.code.isna().all()
        assert len(ns["calls"]) == 2  # computed both times
    finally:
        registry._REGISTRY.pop("_nosrc", None)


def test_an_installed_packages_entry_point(tmp_path):
    """A package that declares [project.entry-points."cs_bench.methods"] adds its methods to
    every command; one whose entry point is broken is named in one line. Installed here as
    pip would lay it out (a module and its .dist-info folder) on PYTHONPATH."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "epmine.py").write_text(doc_example().replace('"mine"', '"ep-mine"'))
    dist = site / "epmine-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: epmine\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[cs_bench.methods]\nep-mine = epmine\nbroken = epmine_missing:Nothing\n")
    env = {**os.environ, "PYTHONPATH": str(site), "OPENBLAS_NUM_THREADS": "1"}
    env.pop(plugins.ENV, None)
    proc = subprocess.run([sys.executable, "-m", "cs_bench.cli", "info", "ep-mine"], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ep-mine: classical")
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "entry point broken = epmine_missing:Nothing" in err[0]
