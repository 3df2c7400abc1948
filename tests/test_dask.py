"""Many machines: joblib's dask backend on a two-worker dask.distributed LocalCluster gives
the numbers of one job, the run cache stays on the client, plugins reach the workers, and
``--backend dask`` without dask installed is one line (cs_bench.cluster, cs_bench.runner)."""

import os
import sys

import pytest

from cs_bench import cluster as csc
from cs_bench import registry
from cs_bench.cli import main
from cs_bench.errors import CSBenchError
from cs_bench.plugins import _LOADED_ENV
from cs_bench.runner import run

# two cheap methods (an iterative one, and a direct one), two images, two ratios: 8 tasks
METHODS = ["ista-wavelet", "min-norm"]
PARAMS = {"ista-wavelet": {"iters": 30}}
RUN = dict(dataset="skimage", ratios=[0.1, 0.25], images=["text", "page"], params=PARAMS,
           progress=False)
SCORES = ["method", "image", "ratio", "M", "psnr", "ssim", "error"]


@pytest.fixture(scope="module")
def local_cluster():
    """Two worker processes, one thread each; started before any plugin file is loaded, so
    the workers learn of a plugin only through the client (as a remote cluster's do)."""
    distributed = pytest.importorskip("distributed")
    saved = os.environ.pop(_LOADED_ENV, None)
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster:
            yield cluster
    finally:
        if saved is not None:
            os.environ[_LOADED_ENV] = saved


def test_two_workers_give_the_numbers_of_one_job_and_the_client_caches(
        local_cluster, tmp_path, monkeypatch):
    import joblib
    from distributed import Client, get_task_stream

    from cs_bench.store import Store

    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path / "cache"))
    one = run(METHODS, jobs=1, cache=False, **RUN)
    with Client(local_cluster) as client, joblib.parallel_config(backend="dask"):
        with get_task_stream(client) as stream:
            dask = run(METHODS, **RUN)
        assert stream.data, "no task ran on the cluster"
        assert Store().count() == 8  # every result, stored by the client
        with get_task_stream(client) as stream:
            again = run(METHODS, **RUN)
        assert not stream.data  # the rerun sent nothing to the cluster
    assert dask["error"].isna().all() and len(dask) == 8
    assert dask[SCORES].equals(one[SCORES])  # the same numbers, bit for bit
    assert again["seconds"].tolist() == dask["seconds"].tolist()  # from the cache
    # and on this machine alone, with no cluster: the same cache, nothing computed
    alone = run(METHODS, jobs=1, **RUN)
    assert alone["seconds"].tolist() == dask["seconds"].tolist()


def test_cli_backend_dask_runs_a_plugin_method_on_the_workers(local_cluster, tmp_path,
                                                              monkeypatch, capsys):
    import pandas as pd

    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(_LOADED_ENV, raising=False)
    mine = tmp_path / "mine_dask.py"
    mine.write_text(
        "from cs_bench.method import Method\n"
        "from cs_bench.registry import register\n\n\n"
        '@register("_dask-mine")\n'
        "class Backprojection(Method):\n"
        "    def reconstruct(self, problem):\n"
        "        return problem.to_image(problem.y @ problem.Phi)\n")
    out = tmp_path / "r.csv"
    argv = ["run", "--plugin", str(mine), "--methods", "_dask-mine,min-norm", "--ratios",
            "0.25", "--images", "text", "--backend", "dask", "--scheduler",
            local_cluster.scheduler_address, "--out", str(out), "--markdown",
            str(tmp_path / "r.md"), "--no-progress"]
    try:
        assert main(argv) == 0, capsys.readouterr().err
    finally:
        registry._REGISTRY.pop("_dask-mine", None)
    df = pd.read_csv(out)
    assert sorted(df.method) == ["_dask-mine", "min-norm"] and df.error.isna().all()
    assert df.code.notna().all()  # cached under the plugin's source hash


def test_a_worker_that_cannot_load_the_method_fails_its_rows(local_cluster, tmp_path,
                                                             monkeypatch):
    """A method whose module only the client has (an uninstalled package): the rows fail
    in one line, never a task lost by the cluster (a hang)."""
    import joblib
    from distributed import Client

    (tmp_path / "onlyhere_mod.py").write_text(
        "from cs_bench.method import Method\n"
        "from cs_bench.registry import register\n\n\n"
        '@register("_onlyhere")\n'
        "class OnlyHere(Method):\n"
        "    def reconstruct(self, problem):\n"
        "        return problem.to_image(problem.y @ problem.Phi)\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # here only: the workers are already running
    try:
        import onlyhere_mod  # noqa: F401

        with Client(local_cluster), joblib.parallel_config(backend="dask"):
            df = run(["_onlyhere", "min-norm"], "skimage", [0.25], images=["text"],
                     cache=False, progress=False)
    finally:
        registry._REGISTRY.pop("_onlyhere", None)
        sys.modules.pop("onlyhere_mod", None)
    err = df.set_index("method")["error"]
    assert err["_onlyhere"].startswith("this worker cannot load the method (ModuleNotFoundError")
    assert "install the same cs-bench" in err["_onlyhere"] and err.isna()["min-norm"]


def test_backend_dask_without_dask_is_one_line(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    rc = main(["run", "--methods", "min-norm", "--backend", "dask", "--scheduler", "local:2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "pip install 'cs-bench[dask]'" in err[0] and "dask.distributed" in err[0]


@pytest.mark.parametrize("argv, needle", [
    (["--backend", "dask"], "needs --scheduler ADDRESS"),
    (["--scheduler", "local:2"], "add --backend dask"),
    (["--backend", "dask", "--scheduler", "local:0"], "local:N with N >= 1"),
    (["--backend", "dask", "--scheduler", "local:2", "--jobs", "2"], "drop --jobs"),
    (["--backend", "dask", "--scheduler", "nowhere/s.json"], "no such scheduler file"),
])
def test_backend_dask_usage_errors_are_one_line(argv, needle, capsys):
    rc = main(["run", "--methods", "min-norm", *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0], err


def test_an_unreachable_scheduler_is_one_line(monkeypatch, capsys):
    pytest.importorskip("distributed")
    monkeypatch.setattr(csc, "CONNECT_TIMEOUT", "1s")
    rc = main(["run", "--methods", "min-norm", "--backend", "dask", "--scheduler",
               "tcp://127.0.0.1:9"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1, err
    assert "cannot reach the dask scheduler tcp://127.0.0.1:9" in err[0]


def test_parse_scheduler():
    assert csc.parse_scheduler("local") == ("local", None)
    assert csc.parse_scheduler("host:8786") == ("address", "host:8786")
    with pytest.raises(CSBenchError, match="local:N"):
        csc.parse_scheduler("local:two")
