import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cs_bench.errors import CSBenchError
from cs_bench.method import Method
from cs_bench.registry import _REGISTRY, register
from cs_bench.runner import COLUMNS, cpu_name, run


def test_long_format_rows():
    df = run(["min-norm"], "skimage", [0.1, 0.25], images=["text", "page"], progress=False)
    assert len(df) == 4 and list(df.columns[: len(COLUMNS)]) == COLUMNS
    assert set(df["M"]) == {109, 272} and df["error"].isna().all()
    # more measurements, better reconstruction, per image
    piv = df.pivot(index="image", columns="ratio", values="psnr")
    assert (piv[0.25] > piv[0.1]).all()


@pytest.fixture
def counting_method():
    calls = []

    @register("_counting")
    class Counting(Method):
        params = {"fail_on": ""}

        def reconstruct(self, problem):
            calls.append(problem.name)
            if problem.name == self.p["fail_on"]:
                raise ValueError("boom")
            return problem.to_image(problem.y @ problem.Phi)

    yield calls
    del _REGISTRY["_counting"]


def test_cache_hit_on_rerun(counting_method):
    a = run(["_counting"], "skimage", [0.1], images=["text"], progress=False)
    assert counting_method == ["text"]
    b = run(["_counting"], "skimage", [0.1], images=["text", "page"], progress=False)
    assert counting_method == ["text", "page"]  # only the new image was computed
    assert b.loc[b.image == "text", "psnr"].item() == a["psnr"].item()
    # each row names the CPU its seconds were measured on, also when it comes from the cache
    assert set(b.cpu) == {cpu_name()} and a.cpu.item() == cpu_name()


def test_failure_recorded_not_cached(counting_method):
    df = run(["_counting"], "skimage", [0.1], images=["text", "page"],
             params={"_counting": {"fail_on": "page"}}, progress=False)
    assert df.loc[df.image == "page", "error"].item() == "ValueError: boom"
    assert df.loc[df.image == "text", "error"].isna().all()
    run(["_counting"], "skimage", [0.1], images=["page"],
        params={"_counting": {"fail_on": "page"}}, progress=False)
    assert counting_method.count("page") == 2  # the failure was not cached


def test_noise_rows():
    df = run(["min-norm"], "skimage", [1.0], noise=[0.0, 0.05], images=["text"], progress=False)
    assert sorted(df["noise_sigma"]) == [0.0, 0.05]
    clean, noisy = df.sort_values("noise_sigma")["psnr"]
    assert clean > 100  # exact at ratio 1 (Phi orthogonal)
    # orthogonal Phi keeps sigma: ~26 dB, a little more where clipping to [0, 1] helps
    assert 20 * np.log10(1 / 0.05) - 0.5 < noisy < 20 * np.log10(1 / 0.05) + 3


def test_user_phi(tmp_path):
    from cs_bench.sensing import make_phi

    np.save(tmp_path / "phi.npy", make_phi(0.1, seed=5))
    df = run(["min-norm"], "skimage", [0.5], phi_path=tmp_path / "phi.npy", images=["text"],
             progress=False)
    assert df["M"].item() == 109 and df["phi"].item().startswith("file:")


def test_bad_inputs_raise_one_line():
    with pytest.raises(CSBenchError):
        run([], "skimage", [0.1])
    with pytest.raises(CSBenchError, match="no image 'nope'"):
        run(["min-norm"], "skimage", [0.1], images=["nope"], progress=False)


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "cs_bench.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_cli_end_to_end(tmp_path):
    out, md = tmp_path / "r.csv", tmp_path / "r.md"
    r = cli("run", "--methods", "min-norm", "--ratios", "0.1,0.25", "--dataset", "skimage",
            "--images", "text,page", "--out", str(out), "--markdown", str(md), "--no-progress")
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(out)
    assert len(df) == 4 and set(df["image"]) == {"text", "page"}
    assert "| min-norm" in md.read_text() and "0.25" in r.stdout


@pytest.mark.parametrize("args,needle", [
    (["run", "--methods", "nope"], "unknown method 'nope'"),
    (["run", "--methods", "min-norm", "--ratios", "0"], "out of range"),
    (["run", "--methods", "min-norm", "--ratios", "-0.1"], "out of range"),
    (["run", "--methods", "min-norm", "--ratios", "1.5"], "out of range"),
    (["run", "--methods", "min-norm", "--ratios", "abc"], "not a number"),
    (["run", "--methods", "min-norm,", "--ratios", "0.1"], "malformed method list"),
    (["run", "--methods", "min-norm", "--ratios", "0.1,,0.2"], "malformed ratio list"),
    (["run", "--methods", "min-norm", "--dataset", "set12"], "unknown dataset"),
    (["run", "--methods", "min-norm", "--out", "/proc/nope/r.csv"], "cannot write"),
    (["run", "--methods", "min-norm", "--param", "min-norm.x=1"], "no parameter"),
    (["frobnicate"], "invalid choice"),
])
def test_cli_bad_input_one_line(args, needle):
    r = cli(*args)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_cli_non_image_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    r = cli("run", "--methods", "min-norm", "--dataset", str(tmp_path), "--no-progress")
    assert r.returncode != 0 and "no image files" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    r = cli("run", "--methods", "min-norm", "--dataset", str(tmp_path), "--no-progress")
    assert r.returncode != 0 and "broken.png" in r.stderr and "Traceback" not in r.stderr


def test_cli_small_image_is_padded(tmp_path):
    from PIL import Image

    Image.fromarray((np.random.default_rng(0).random((20, 25)) * 255).astype(np.uint8)).save(
        tmp_path / "tiny.png")
    r = cli("run", "--methods", "min-norm", "--ratios", "1.0", "--dataset", str(tmp_path),
            "--no-progress", "--no-cache")
    assert r.returncode == 0, r.stderr
    assert "min-norm" in r.stdout


def test_folder_images_with_one_stem_keep_their_suffix(tmp_path):
    from PIL import Image

    from cs_bench.data import image_folder_refs

    rng = np.random.default_rng(0)
    for name in ("a.png", "a.tif", "b.png"):
        Image.fromarray((rng.random((40, 40)) * 255).astype(np.uint8)).save(tmp_path / name)
    names = [r.name for r in image_folder_refs(tmp_path)]
    assert names == ["a.png", "a.tif", "b"]


def test_cache_clear_of_one_method_keeps_the_others(counting_method, capsys):
    from cs_bench import cli as cli_mod

    assert cli_mod.main(["cache", "clear", "--methods", "_counting"]) == 0  # other tests' rows
    run(["_counting", "min-norm"], "skimage", [0.1], images=["text"], progress=False)
    assert counting_method == ["text"]
    assert cli_mod.main(["cache", "clear", "--methods", "_counting"]) == 0
    assert "cached results of _counting" in capsys.readouterr().out
    df = run(["_counting", "min-norm"], "skimage", [0.1], images=["text"], progress=False)
    assert counting_method == ["text", "text"] and len(df) == 2  # recomputed; min-norm cached
    assert cli_mod.main(["cache", "clear", "--methods", "nope"]) == 2


def test_cached_only_computes_nothing(counting_method):
    from cs_bench.runner import NOT_CACHED

    run(["_counting"], "skimage", [0.37], images=["text"], progress=False)
    assert counting_method == ["text"]
    df = run(["_counting"], "skimage", [0.37], images=["text", "page"], progress=False,
             cached_only=True)
    assert counting_method == ["text"]  # nothing computed
    assert df.loc[df.image == "text", "error"].isna().all()
    assert np.isfinite(df.loc[df.image == "text", "psnr"].item())
    assert df.loc[df.image == "page", "error"].item() == NOT_CACHED
    df = run(["_counting"], "skimage", [0.37], images=["text"], progress=False, cache=False,
             cached_only=True)
    assert df["error"].item() == NOT_CACHED and counting_method == ["text"]


def test_a_surrounding_parallel_config_is_honoured(monkeypatch):
    """jobs=None (the default) takes the backend and n_jobs of a surrounding
    joblib.parallel_config, else runs in this process; an explicit jobs sets the count."""
    import joblib

    seen = []
    real = joblib.Parallel.__init__

    def spy(self, n_jobs=None, **kw):
        real(self, n_jobs=n_jobs, **kw)
        seen.append((n_jobs, type(self._backend).__name__))

    monkeypatch.setattr(joblib.Parallel, "__init__", spy)
    kw = dict(images=["text", "page"], cache=False, progress=False)
    ref = run(["min-norm"], "skimage", [0.1], **kw)
    with joblib.parallel_config(backend="threading", n_jobs=2):
        threaded = run(["min-norm"], "skimage", [0.1], **kw)
        explicit = run(["min-norm"], "skimage", [0.1], jobs=1, **kw)
    with joblib.parallel_config(n_jobs=-1):  # every core, still capped at the 2 tasks
        run(["min-norm"], "skimage", [0.1], **kw)
    assert seen[0] == (1, "LokyBackend")  # one job: joblib runs it in this process
    assert seen[1] == (2, "ThreadingBackend")  # the surrounding config, not overridden
    assert seen[2] == (1, "ThreadingBackend")  # jobs=1 given: one
    assert seen[3] == (min(2, os.cpu_count() or 1), "LokyBackend")
    cols = ["image", "psnr", "ssim"]
    assert threaded[cols].equals(ref[cols]) and explicit[cols].equals(ref[cols])
