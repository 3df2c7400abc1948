"""Failure modes: each row of docs/failure-modes.md is a test here.

Every bad input or fault gives exactly one line on stderr (no traceback unless ``--debug``),
the exit code of the table, and keeps what the table says it keeps.

CLI rows run ``python -m cs_bench.cli`` in subprocesses. Each pays the torch import (about
2-3 s), so a module fixture starts them all in a small thread pool when the first CLI test
asks and each test waits for its own. Faults a subprocess cannot set up (disk full, Ctrl-C,
a method that raises, NaN measurements) call :func:`cs_bench.cli.main` or the methods
in-process.
"""

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from cs_bench import Problem, cli, get_method, list_methods
from cs_bench.errors import CSBenchError, DataError
from cs_bench.images import luminance, read_image
from cs_bench.learned import weights as wt
from cs_bench.method import Method
from cs_bench.registry import _REGISTRY, register
from cs_bench.runner import run

# tiny ISTA-Net: 256 synthetic blocks, batch 64 -> 4 steps per epoch, 2 epochs
TINY = ["--source", "synthetic", "--blocks", "256", "--val-blocks", "64", "--batch", "64",
        "--device", "cpu", "--precision", "fp32", "--threads", "1", "--checkpoint-every", "0",
        "--no-progress"]
TRAIN = ["train", "ista-net", "--ratio", "0.25", "--phases", "1", "--nf", "4", "--epochs", "2",
         *TINY]
ISTA = "ista-net_r0.25_np1_nf4"
OFFLINE_ENV = {k: "http://127.0.0.1:9" for k in ("https_proxy", "HTTPS_PROXY", "http_proxy",
                                                  "HTTP_PROXY", "all_proxy", "ALL_PROXY")}
OFFLINE_ENV.update(no_proxy="", NO_PROXY="")


# -- helpers -----------------------------------------------------------------------------
def one_line(stderr, *needles):
    """The single stderr line (asserting there is exactly one, holding every needle)."""
    assert "Traceback" not in stderr, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def _cli(argv, env):
    return subprocess.run([sys.executable, "-m", "cs_bench.cli", *argv], capture_output=True,
                          text=True, env=env, timeout=300)


class _Pool:
    """CLI runs started together; ``pool[case]`` waits for one."""

    def __init__(self, cases, env):
        self.ex = ThreadPoolExecutor(max_workers=3)
        self.futures = {cid: self.ex.submit(_cli, argv, {**env, **extra})
                        for cid, (argv, extra) in cases.items()}

    def __getitem__(self, cid):
        return self.futures[cid].result()

    def close(self):
        self.ex.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("failure_modes")


@pytest.fixture(scope="module")
def base_env(root):
    env = dict(os.environ)
    env.update(CS_BENCH_CACHE=str(root / "cache"), CS_BENCH_WEIGHTS=str(root / "weights"))
    return env


@pytest.fixture(scope="module")
def files(root):
    """Every bad (and good-but-unusual) input file the CLI rows need."""
    rng = np.random.default_rng(0)
    f = {}
    ok = root / "images_ok"
    ok.mkdir()
    rgb = (rng.random((40, 50, 3)) * 255).astype(np.uint8)
    Image.fromarray((rng.random((40, 50)) * 65535).astype(np.uint16)).save(ok / "gray16.png")
    Image.fromarray(rgb).save(ok / "colour.png")
    Image.fromarray(rgb).convert("P").save(ok / "palette.png")
    Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(ok / "rgba.png")
    Image.fromarray(rgb[:20, :25, 0]).save(ok / "small.png")  # smaller than one 33x33 block
    f["ok"] = ok
    bad = root / "images_bad"
    bad.mkdir()
    Image.fromarray(rgb[..., 0]).save(bad / "good.png")
    data = (ok / "colour.png").read_bytes()
    (bad / "corrupt.png").write_bytes(data[: len(data) // 2])  # truncated PNG
    (bad / "zero.png").write_bytes(b"")
    f["bad"] = bad
    notimg = root / "not_images"
    notimg.mkdir()
    (notimg / "notes.txt").write_text("hello")
    (notimg / "table.csv").write_text("a,b\n1,2\n")
    f["notimg"] = notimg
    np.save(root / "phi_shape.npy", np.zeros((10, 1000)))
    phi = rng.standard_normal((109, 1089))
    phi[3, 7] = np.nan
    np.save(root / "phi_nan.npy", phi)
    (root / "phi_garbage.npy").write_bytes(b"this is not an npy file")
    (root / "phi.txt").write_text("1 2 3\n")
    from scipy.io import savemat

    savemat(root / "phi_nokey.mat", {"A": np.eye(3)})
    (root / "a_file").write_text("a regular file, not a folder")
    for d in ("empty_data", "empty_cache", "empty_cache2"):
        (root / d).mkdir()
    return f


def _run(*extra):
    return ["run", "--methods", "min-norm", "--ratios", "0.1", "--images", "text", "--no-progress",
            *extra]


# -- bad command-line input (subprocess, before any work) ---------------------------------
# case id -> (argv, extra env, exit code, needles of the one stderr line)
def _basic_cases(root, f):
    off = {"CS_BENCH_DATA": str(root / "empty_data"),
           "CS_BENCH_CACHE": str(root / "empty_cache"), **OFFLINE_ENV}
    return {
        "unknown-method": (["run", "--methods", "ista-wavlet"], {}, 2,
                           ["unknown method 'ista-wavlet'", "did you mean 'ista-wavelet'?",
                            "valid: "]),
        "unknown-dataset": (_run("--dataset", "sett11"), {}, 2,
                            ["unknown dataset 'sett11'", "did you mean 'set11'?", "skimage"]),
        "unknown-image": (["run", "--methods", "min-norm", "--images", "txet"], {}, 3,
                          ["no image 'txet' in skimage", "text"]),
        "ratio-zero": (_run("--ratios", "0"), {}, 2, ["ratio 0 is out of range", "(0, 1]"]),
        "ratio-negative": (_run("--ratios", "-0.1"), {}, 2, ["ratio -0.1 is out of range"]),
        "ratio-above-one": (_run("--ratios", "1.5"), {}, 2, ["ratio 1.5 is out of range"]),
        "ratio-not-a-number": (_run("--ratios", "0.1,abc"), {}, 2,
                               ["ratio 'abc' is not a number"]),
        "ratio-nan": (_run("--ratios", "nan"), {}, 2, ["ratio nan is out of range"]),
        "methods-empty": (["run", "--methods", ""], {}, 2, ["malformed method list ''"]),
        "methods-only-commas": (["run", "--methods", ","], {}, 2, ["malformed method list ','"]),
        "noise-nan": (_run("--noise", "nan"), {}, 2, ["noise sigma must be a finite number"]),
        "noise-negative": (_run("--noise=-0.1"), {}, 2, ["noise sigma must be a finite number"]),
        "param-bad-value": (["run", "--methods", "tval3", "--param", "tval3.maxit=many"], {}, 2,
                            ["tval3.maxit: 'many' is not a valid int"]),
        "param-bad-value-none-default": (["run", "--methods", "ista-wavelet", "--param",
                                          "ista-wavelet.iters=abc"], {}, 2,
                                         ["ista-wavelet.iters: 'abc' is not a valid int"]),
        "scope-unsupported": (["run", "--methods", "reconnet", "--scope", "image"], {}, 2,
                              ["'reconnet' does not support scope 'image'"]),
        "jobs-zero": (_run("--jobs", "0"), {}, 2, ["--jobs 0"]),
        "folder-of-non-images": (_run("--dataset", str(f["notimg"])), {}, 3,
                                 ["no image files", str(f["notimg"])]),
        "phi-wrong-shape": (_run("--phi", str(root / "phi_shape.npy")), {}, 2,
                            ["Phi has shape (10, 1000), expected M x 1089"]),
        "phi-nan": (_run("--phi", str(root / "phi_nan.npy")), {}, 2,
                    ["phi_nan.npy: Phi contains NaN or Inf"]),
        "phi-unreadable": (_run("--phi", str(root / "phi_garbage.npy")), {}, 2,
                           ["phi_garbage.npy: cannot read Phi"]),
        "phi-missing": (_run("--phi", str(root / "nope.npy")), {}, 2,
                        ["cannot read Phi (FileNotFoundError)"]),
        "phi-other-suffix": (_run("--phi", str(root / "phi.txt")), {}, 2,
                             ["phi.txt: Phi must be a .npy or .mat file"]),
        "phi-mat-without-phi": (_run("--phi", str(root / "phi_nokey.mat")), {}, 2,
                                ["phi_nokey.mat: no variable 'phi' in the .mat file"]),
        "out-unwritable": (_run("--out", "/proc/cs-bench/r.csv"), {}, 2,
                           ["cannot write /proc/cs-bench/r.csv"]),
        "out-is-a-folder": (_run("--out", str(root)), {}, 2, ["it is a directory"]),
        "out-under-a-file": (_run("--markdown", str(root / "a_file" / "r.md")), {}, 2,
                             ["cannot write", "a_file"]),
        "offline-missing-data": (_run("--dataset", "set5"), off, 3,
                                 ["Set5/", "missing and could not be downloaded", "--data-dir",
                                  "CS_BENCH_DATA", "cs-bench data fetch set5"]),
        "offline-data-verify": (["data", "verify", "set5"], off, 3,
                                ["Set5/", "is missing", "cs-bench data fetch set5"]),
        "train-bad-ratio": (["train", "ista-net", "--ratio", "0"], {}, 2,
                            ["ratio 0.0 is out of range"]),
        "train-nothing-to-resume": (["train", "ista-net", "--ratio", "0.25", "--resume", "--out",
                                     str(root / "no_run")], {}, 2, ["nothing to resume"]),
    }


def _work_cases(root, f):
    """CLI runs that do work (their own tests check the results)."""
    return {
        "images-ok": (["run", "--methods", "min-norm", "--ratios", "0.1", "--dataset",
                       str(f["ok"]), "--no-progress", "--out", str(root / "ok.csv")], {}),
        "images-bad": (["run", "--methods", "min-norm", "--ratios", "0.1", "--dataset",
                        str(f["bad"]), "--no-progress", "--out", str(root / "bad.csv")], {}),
        "debug": (["--debug", "run", "--methods", "ista-wavlet"], {}),
    }


BASIC = list(_basic_cases(Path("/r"), {"notimg": "", "ok": "", "bad": ""}))
#: one case per row of the table also runs as ``python -m cs_bench.cli`` (the rest of a row's
#: variants run in-process only: a subprocess costs the torch import)
SUB_BASIC = [c for c in BASIC if c not in (
    "ratio-nan", "methods-only-commas", "noise-negative", "out-is-a-folder", "out-under-a-file",
    "phi-missing", "phi-other-suffix", "phi-mat-without-phi", "offline-data-verify",
    "train-bad-ratio")]


@pytest.fixture(scope="module")
def basic_cli(root, files, base_env):
    cases = {cid: c[:2] for cid, c in _basic_cases(root, files).items() if cid in SUB_BASIC}
    cases.update(_work_cases(root, files))
    pool = _Pool(cases, base_env)
    yield pool
    pool.close()


@pytest.mark.parametrize("cid", SUB_BASIC)
def test_cli_bad_input_is_one_line(basic_cli, root, files, cid):
    _, _, code, needles = _basic_cases(root, files)[cid]
    r = basic_cli[cid]
    assert r.returncode == code, (r.returncode, r.stderr)
    one_line(r.stderr, *needles)
    assert r.stdout == ""  # refused before any reconstruction: no table, no files
    # (that an offline download is refused at once is checked in-process, without the
    # subprocess's torch import and the pool's parallel runs in the time:
    # test_missing_data_offline_fails_fast_and_leaves_nothing)


def _in_process(argv, env, monkeypatch, capsys):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    rc = cli.main(argv)
    return rc, capsys.readouterr()


@pytest.mark.parametrize("cid", BASIC)
def test_bad_input_in_process(root, files, cid, monkeypatch, capsys):
    argv, env, code, needles = _basic_cases(root, files)[cid]
    rc, std = _in_process(argv, env, monkeypatch, capsys)
    assert rc == code, std.err
    one_line(std.err, *needles)
    assert std.out == ""


def test_cli_debug_shows_the_traceback(basic_cli):
    r = basic_cli["debug"]
    assert r.returncode == 1
    assert "Traceback (most recent call last)" in r.stderr
    assert "CSBenchError: unknown method 'ista-wavlet'" in r.stderr.splitlines()[-1]


# -- images -------------------------------------------------------------------------------
def test_cli_unusual_images_work(basic_cli, root):
    """16-bit, colour, palette, RGBA and smaller-than-a-block images run (luminance, padded)."""
    r = basic_cli["images-ok"]
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    df = pd.read_csv(root / "ok.csv")
    assert sorted(df["image"]) == ["colour", "gray16", "palette", "rgba", "small"]
    assert df["error"].isna().all() and (df["M"] == 109).all()
    assert np.isfinite(df["psnr"]).all()


@pytest.mark.parametrize("kind", ["gray16", "colour", "palette", "rgba", "gray-alpha", "small"])
def test_unusual_images_are_read_as_luminance(tmp_path, kind):
    rng = np.random.default_rng(1)
    rgb = (rng.random((34, 35, 3)) * 255).astype(np.uint8)
    p = tmp_path / f"{kind}.png"
    if kind == "gray16":
        a = (rng.random((34, 35)) * 65535).astype(np.uint16)
        Image.fromarray(a).save(p)
        assert Image.open(p).mode.startswith("I;16")
        want = a / 257.0
    elif kind == "colour":
        Image.fromarray(rgb).save(p)
        want = luminance(rgb)
    elif kind == "palette":
        Image.fromarray(rgb).convert("P").save(p)
        assert Image.open(p).mode == "P"
        want = luminance(np.asarray(Image.open(p).convert("RGB")))
    elif kind == "rgba":
        Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(p)
        want = luminance(rgb)
    elif kind == "gray-alpha":
        Image.fromarray(rgb[..., :2].copy(), "LA").save(p)
        want = rgb[..., 0].astype(float)
    else:  # smaller than one block: zero-padded to 33 x 33, one block, cropped back
        Image.fromarray(rgb[:20, :25, 0]).save(p)
        want = rgb[:20, :25, 0].astype(float)
    got = read_image(p)
    assert got.shape == want.shape and np.allclose(got, want, atol=1e-9)
    prob = Problem.from_image(got / 255, 1.0)  # Phi orthogonal: Phi^T y gives the image back
    assert prob.y.shape[0] == (1 if kind == "small" else 4)
    assert np.allclose(prob.to_image(prob.y @ prob.Phi), got / 255)


def test_cli_corrupt_and_zero_byte_images_are_named(basic_cli, root):
    """The other images still finish; each bad file is named in the error column."""
    r = basic_cli["images-bad"]
    assert r.returncode == 1
    one_line(r.stderr, "2 of 3 reconstructions failed", "corrupt.png: not a readable image")
    df = pd.read_csv(root / "bad.csv").set_index("image")
    assert np.isfinite(df.loc["good", "psnr"]) and pd.isna(df.loc["good", "error"])
    assert "zero.png: not a readable image" in df.loc["zero", "error"]
    assert "corrupt.png" in df.loc["corrupt", "error"]


# -- data offline -----------------------------------------------------------------------
def test_missing_data_offline_fails_fast_and_leaves_nothing(root, files, monkeypatch):
    from cs_bench import data

    monkeypatch.setenv("CS_BENCH_DATA", str(root / "empty_data"))
    monkeypatch.setenv("CS_BENCH_CACHE", str(root / "empty_cache2"))
    for k, v in OFFLINE_ENV.items():
        monkeypatch.setenv(k, v)
    t0 = time.perf_counter()
    with pytest.raises(DataError, match="could not be downloaded") as exc:
        data.image_refs("set5")
    assert time.perf_counter() - t0 < 15
    assert "\n" not in str(exc.value)
    left = [p for p in (root / "empty_cache2").rglob("*") if p.is_file()]
    assert left == []  # no partial download


# -- learned weights ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(root):
    """Tiny ISTA-Net (2 epochs) and ReconNet (1 epoch) weights at ratio 0.25, trained with
    the CLI into the module's weights folder."""
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CS_BENCH_CACHE", str(root / "cache"))
        mp.setenv("CS_BENCH_WEIGHTS", str(root / "weights"))
        assert cli.main(TRAIN + ["--out", str(root / "run_ista")]) == 0
        assert cli.main(["train", "reconnet", "--ratio", "0.25", "--epochs", "1", *TINY,
                         "--name", "tiny-reconnet_r0.25", "--out", str(root / "run_reconnet")]) == 0
        # the tampered-weights row: a result cached with good weights, then the file changed
        tampered = root / "weights_tampered"
        shutil.copytree(root / "weights", tampered)
        mp.setenv("CS_BENCH_WEIGHTS", str(tampered))
        mp.setenv("CS_BENCH_CACHE", str(root / "cache_tampered"))
        df = run(["ista-net"], "skimage", [0.25], images=["text"], progress=False,
                 params={"ista-net": {"phases": 1, "nf": 4}})
        assert df["error"].isna().all()
        p = tampered / (ISTA + wt.SUFFIX)
        b = bytearray(p.read_bytes())
        b[-10] ^= 0xFF
        p.write_bytes(bytes(b))
        # a truncated copy, given as a path
        good = (root / "weights" / (ISTA + wt.SUFFIX)).read_bytes()
        (root / "truncated.safetensors").write_bytes(good[: len(good) - 100])
    torch.set_num_threads(threads)
    return root / "weights" / (ISTA + wt.SUFFIX)


def _learned(method, ratio, *params):
    argv = ["run", "--methods", method, "--ratios", str(ratio), "--images", "text", "--no-progress"]
    for p in params:
        argv += ["--param", f"{method}.{p}"]
    return argv


def _weights_cases(root):
    tampered = {"CS_BENCH_WEIGHTS": str(root / "weights_tampered"),
                "CS_BENCH_CACHE": str(root / "cache_tampered")}
    return {
        "weights-tampered": (_learned("ista-net", 0.25, "phases=1", "nf=4"), tampered,
                             ["1 of 1 reconstructions failed", ISTA + ".safetensors: sha256 "
                              "mismatch", "delete it and train or import it again"]),
        "weights-truncated": (_learned("ista-net", 0.25,
                                       f"weights={root / 'truncated.safetensors'}"), {},
                              ["truncated.safetensors: not a cs-bench weights file"]),
        "weights-missing-file": (_learned("ista-net", 0.25,
                                          f"weights={root / 'nope.safetensors'}"), {},
                                 ["weights file", "nope.safetensors does not exist"]),
        "weights-other-ratio": (_learned("ista-net", 0.1, "phases=1", "nf=4"), {},
                                ["no weights named 'ista-net_r0.1_np1_nf4'",
                                 "ista-net has weights with Np=1, Nf=4 at ratios 0.25 (",
                                 "train them with: cs-bench train ista-net --ratio 0.1 "
                                 "--phases 1 --nf 4"]),
        "weights-other-ratio-fixed-M": (_learned("reconnet", 0.1, "weights=tiny-reconnet_r0.25"), {},
                                        ["weights 'tiny-reconnet_r0.25' take M=272 measurements",
                                         "this run has M=109"]),
        "weights-other-trained-ratio": (_learned("ista-net", 0.1, f"weights={ISTA}",
                                                 "trained_ratio=0.4"), {},
                                        ["were trained at ratio 0.25, not trained_ratio=0.4"]),
        "weights-other-phases": (_learned("ista-net", 0.25, f"weights={ISTA}", "phases=3"), {},
                                 ["have phases=1 but ista-net.phases=3",
                                  "pass --param ista-net.phases=1"]),
    }


WEIGHTS = list(_weights_cases(Path("/r")))
SUB_WEIGHTS = [c for c in WEIGHTS if c not in ("weights-missing-file",
                                               "weights-other-trained-ratio")]


@pytest.fixture(scope="module")
def weights_cli(root, trained, base_env):
    pool = _Pool({cid: c[:2] for cid, c in _weights_cases(root).items() if cid in SUB_WEIGHTS},
                 base_env)
    yield pool
    pool.close()


@pytest.mark.parametrize("cid", SUB_WEIGHTS)
def test_cli_bad_weights_fail_the_run_in_one_line(weights_cli, root, cid):
    """Damaged or mismatched weights: the row's error column, exit 1, one stderr line."""
    needles = _weights_cases(root)[cid][2]
    r = weights_cli[cid]
    assert r.returncode == 1, r.stderr
    line = one_line(r.stderr, *needles)
    assert line.startswith("cs-bench: 1 of 1 reconstructions failed")
    assert "Failures:" in r.stdout  # the table lists the failure too


@pytest.mark.parametrize("cid", WEIGHTS)
def test_bad_weights_in_process(trained, root, cid, monkeypatch, capsys):
    argv, env, needles = _weights_cases(root)[cid]
    monkeypatch.setenv("CS_BENCH_WEIGHTS", str(root / "weights"))
    rc, std = _in_process(argv, env, monkeypatch, capsys)
    assert rc == 1, std.err
    one_line(std.err, "cs-bench: 1 of 1 reconstructions failed", *needles)


def test_training_over_existing_weights_is_refused(trained, tmp_path, monkeypatch, capsys):
    before = trained.read_bytes()
    monkeypatch.setenv("CS_BENCH_WEIGHTS", str(trained.parent))
    rc, std = _in_process(TRAIN + ["--out", str(tmp_path / "run")], {}, monkeypatch, capsys)
    assert rc == 4
    one_line(std.err, f"weights '{ISTA}' already exist", "--force", "--resume")
    assert trained.read_bytes() == before and not (tmp_path / "run").exists()


# -- disk full ----------------------------------------------------------------------------
def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_while_writing_results_keeps_the_previous_file(tmp_path, monkeypatch,
                                                                  capsys):
    out = tmp_path / "r.csv"
    out.write_text("the previous results\n")
    with monkeypatch.context() as mp:
        mp.setattr(os, "fsync", _enospc)
        assert cli.main(_run("--out", str(out))) == 2
    one_line(capsys.readouterr().err, f"cannot write {out}: No space left on device")
    assert out.read_text() == "the previous results\n"
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]  # no temporary file left
    # space freed: the rerun takes the cached row and writes the file
    assert cli.main(_run("--out", str(out))) == 0
    assert pd.read_csv(out)["image"].tolist() == ["text"]


def test_disk_full_while_training_keeps_the_checkpoint(trained, tmp_path, monkeypatch, capsys):
    import safetensors.torch

    monkeypatch.setenv("CS_BENCH_WEIGHTS", str(tmp_path / "weights"))
    argv = TRAIN + ["--name", "full", "--out", str(tmp_path / "run")]
    ckpt = tmp_path / "run" / "checkpoint.safetensors"
    assert cli.main(argv + ["--max-steps", "2"]) == 0
    before = ckpt.read_bytes()
    capsys.readouterr()
    with monkeypatch.context() as mp:
        mp.setattr(safetensors.torch, "save_file", _enospc)
        assert cli.main(argv + ["--resume"]) == 2
    one_line(capsys.readouterr().err, "error: No space left on device",
             "run the same command again")
    assert ckpt.read_bytes() == before
    assert [p.name for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")] == []
    assert not (tmp_path / "weights" / "full.safetensors").exists()
    # space freed: resuming ends with the weights of an uninterrupted run
    assert cli.main(argv + ["--resume"]) == 0
    _same_weights(tmp_path / "weights" / "full.safetensors", trained)


def _same_weights(a, b):
    ta, tb = wt.read_tensors(a), wt.read_tensors(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.allclose(ta[k], tb[k], rtol=0, atol=1e-6), k


# -- Ctrl-C -------------------------------------------------------------------------------
_INTERRUPT = {"on": None}


@pytest.fixture
def interruptible():
    calls = []

    @register("_fm-interruptible")
    class Interruptible(Method):
        def reconstruct(self, problem):
            calls.append(problem.name)
            if problem.name == _INTERRUPT["on"]:
                raise KeyboardInterrupt  # what Ctrl-C does in the middle of a method
            return problem.to_image(problem.y @ problem.Phi)

    yield calls
    del _REGISTRY["_fm-interruptible"]
    _INTERRUPT["on"] = None


def test_ctrl_c_in_run_keeps_finished_rows_and_resumes(interruptible, tmp_path, monkeypatch,
                                                       capsys):
    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "r.csv"
    out.write_text("the previous results\n")
    argv = ["run", "--methods", "_fm-interruptible", "--ratios", "0.1", "--images",
            "text,page,coins", "--no-progress", "--out", str(out)]
    _INTERRUPT["on"] = "page"  # Ctrl-C on the second image
    assert cli.main(argv) == 130
    one_line(capsys.readouterr().err, "interrupted", "finished results are cached",
             "run the same command again to resume")
    assert out.read_text() == "the previous results\n"  # no half-written CSV
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "r.csv"]
    _INTERRUPT["on"] = None
    assert cli.main(argv) == 0
    assert interruptible == ["text", "page", "page", "coins"]  # text came from the cache
    assert sorted(pd.read_csv(out)["image"]) == ["coins", "page", "text"]


@pytest.mark.parametrize("presses", [1, 2], ids=["once", "twice"])
def test_ctrl_c_during_training_resumes_to_the_same_weights(trained, tmp_path, monkeypatch,
                                                           capsys, presses):
    """Once: stop after the step, checkpoint, exit 130. Twice: abort at once (exit 130) with
    the last epoch's checkpoint. Either way ``--resume`` ends with the uninterrupted weights."""
    from cs_bench.learned import train as train_mod

    monkeypatch.setenv("CS_BENCH_WEIGHTS", str(tmp_path / "weights"))
    real, fired, handler = train_mod.lr_at, [], signal.getsignal(signal.SIGINT)

    def lr_at(cfg, step, total):
        if step == 6 and not fired:  # the 3rd step of epoch 2
            fired.append(step)
            for _ in range(presses):
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # let the handler run before the next press
        return real(cfg, step, total)

    monkeypatch.setattr(train_mod, "lr_at", lr_at)
    argv = TRAIN + ["--name", "ctrl-c", "--out", str(tmp_path / "run")]
    ckpt = tmp_path / "run" / "checkpoint.safetensors"
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    assert fired and ckpt.is_file()
    assert not (tmp_path / "weights" / "ctrl-c.safetensors").exists()
    if presses == 1:
        assert rc == 130 and err == ""
        assert "SIGINT: stopping after this step" in out and "continue with --resume" in out
    else:
        assert rc == 130
        one_line(err, "interrupted")
    assert signal.getsignal(signal.SIGINT) is handler  # the training's handler is gone
    assert cli.main(argv + ["--resume"]) == 0
    _same_weights(tmp_path / "weights" / "ctrl-c.safetensors", trained)


# -- NaN measurements ---------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("method", list_methods())
def test_non_finite_measurements_raise_one_line(method, bad):
    prob = Problem.from_image(np.full((40, 40), 0.5), 0.25)
    prob.y[1, 3] = bad
    with pytest.raises(CSBenchError, match="NaN or Inf") as exc:
        get_method(method).reconstruct(prob)
    assert "\n" not in str(exc.value)


# -- a method that raises on one image ----------------------------------------------------
@pytest.fixture
def flaky():
    calls = []

    @register("_fm-flaky")
    class Flaky(Method):
        def reconstruct(self, problem):
            calls.append(problem.name)
            if problem.name == "page":
                raise ValueError("did not converge")
            return problem.to_image(problem.y @ problem.Phi)

    yield calls
    del _REGISTRY["_fm-flaky"]


def test_a_method_failing_on_one_image(flaky, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "r.csv"
    argv = ["run", "--methods", "_fm-flaky", "--ratios", "0.1", "--images", "text,page,coins",
            "--no-progress", "--out", str(out)]
    assert cli.main(argv) == 1
    std = capsys.readouterr()
    one_line(std.err, "1 of 3 reconstructions failed; first: _fm-flaky on page: "
             "ValueError: did not converge")
    df = pd.read_csv(out).set_index("image")
    assert df.loc["page", "error"] == "ValueError: did not converge"
    assert df.loc[["text", "coins"], "error"].isna().all()
    assert np.isfinite(df.loc[["text", "coins"], "psnr"]).all()
    assert "Failures:" in std.out
    assert cli.main(argv) == 1
    assert flaky == ["text", "page", "coins", "page"]  # the failure was not cached


# == issue 21: a hostile probe's cases ======================================================
# Each case runs in-process through cs_bench.cli.main (no torch import per case). Files are
# made once per module in ``probe_files``.
@pytest.fixture(scope="module")
def probe_files(root):
    import scipy.sparse
    import tifffile
    from scipy.io import savemat

    d = root / "probe"
    d.mkdir()
    rng = np.random.default_rng(2)
    f = {"dir": d}
    imgs = d / "images"
    imgs.mkdir()
    Image.fromarray((rng.random((40, 40)) * 255).astype(np.uint8)).save(imgs / "a.png")
    f["imgs"] = imgs
    tifs = d / "tifs"
    tifs.mkdir()
    tifffile.imwrite(tifs / "float.tif", rng.random((40, 40)) * 1000)
    tifffile.imwrite(tifs / "ok.tif", (rng.random((40, 40)) * 255).astype(np.uint8))
    f["tifs"] = tifs
    tiny = d / "tiny"
    tiny.mkdir()
    Image.fromarray((rng.random((5, 6)) * 255).astype(np.uint8)).save(tiny / "tiny.png")
    f["tiny"] = tiny
    phi = np.linalg.qr(rng.standard_normal((1089, 1089)))[0][:109]
    np.save(d / "phi_ok.npy", phi)
    np.save(d / "phi_complex.npy", phi + 1j * phi)
    np.save(d / "phi_huge.npy", phi * 1e200)
    np.save(d / "phi_zero.npy", np.zeros((109, 1089)))
    np.save(d / "phi_string.npy", np.array(["a", "b"]))
    np.save(d / "phi_struct.npy", np.zeros(3, dtype=[("a", "f8"), ("b", "i4")]))
    np.savez(d / "phi_npz.npz", phi=phi)
    shutil.copy(d / "phi_npz.npz", d / "phi_npz.npy")
    savemat(d / "phi_sparse.mat", {"phi": scipy.sparse.csr_matrix(phi)})
    savemat(d / "phi_struct.mat", {"phi": {"a": 1.0, "b": 2.0}})
    savemat(d / "phi_cell.mat", {"phi": np.array([[1.0], "x"], dtype=object)})
    savemat(d / "phi_char.mat", {"phi": "hello"})
    savemat(d / "qinit_sparse.mat", {"Qinit": scipy.sparse.csr_matrix(phi.T)})
    savemat(d / "phi_ok.mat", {"phi": phi})
    (d / "a_file").write_text("a file, not a folder")
    return f


def _r(*extra):
    return ["run", "--methods", "min-norm", "--ratios", "0.1", "--images", "text", "--no-progress",
            *extra]


def _probe_cases(f):
    """case id -> (argv, extra env, exit code, needles of the one stderr line)."""
    d = f["dir"]
    phi = {k: str(d / k) for k in ("phi_complex.npy", "phi_huge.npy", "phi_zero.npy",
                                   "phi_string.npy", "phi_struct.npy", "phi_npz.npy",
                                   "phi_sparse.mat", "phi_struct.mat", "phi_cell.mat",
                                   "phi_char.mat")}
    folder = ["run", "--methods", "min-norm", "--ratios", "0.1", "--no-progress"]
    tiny_train = ["train", "ista-net", "--ratio", "0.25", *TINY, "--out", str(d / "never")]
    imp = ["import-official", "--checkpoint", str(d / "none.pkl"), "--phi",
           str(d / "phi_ok.mat"), "--qinit", str(d / "qinit_sparse.mat"), "--name", "x"]
    return {
        # item 2: --out
        "out-device": (_r("--out", "/dev/null"), {}, 2, ["cannot write /dev/null",
                                                        "character device"]),
        "out-is-an-input-image": (folder + ["--dataset", str(f["imgs"]), "--out",
                                            str(f["imgs"] / "a.png")], {}, 2,
                                  ["a.png: it is an input of this run"]),
        "out-is-the-phi": (_r("--phi", str(d / "phi_ok.npy"), "--markdown",
                              str(d / "phi_ok.npy")), {}, 2, ["an input of this run"]),
        "out-equals-markdown": (_r("--out", str(d / "same"), "--markdown", str(d / "same")), {},
                                2, ["--out and --markdown name the same file"]),
        # item 3: NaN parameters, complex or overflowing Phi
        "param-nan": (["run", "--methods", "tval3", "--param", "tval3.mu=nan"], {}, 2,
                      ["parameter tval3.mu: nan is not a finite number"]),
        "param-inf": (["run", "--methods", "tval3", "--param", "tval3.mu=inf"], {}, 2,
                      ["parameter tval3.mu: inf is not a finite number"]),
        "phi-complex": (_r("--phi", phi["phi_complex.npy"]), {}, 2,
                        ["Phi is complex (complex128); give a real matrix"]),
        "phi-huge": (_r("--phi", phi["phi_huge.npy"]), {}, 2,
                     ["Phi's entries are too large", "overflow"]),
        "phi-zero": (_r("--phi", phi["phi_zero.npy"]), {}, 2, ["Phi is all zeros"]),
        # item 4: --jobs
        "jobs-negative-zero-workers": (_r("--jobs", "0"), {}, 2, ["--jobs 0 means no workers"]),
        # item 8: bad files and settings
        "phi-sparse-mat": (_r("--phi", phi["phi_sparse.mat"]), {}, 2,
                           ["Phi is a sparse matrix", "full(phi)"]),
        "phi-struct-mat": (_r("--phi", phi["phi_struct.mat"]), {}, 2, ["Phi is a struct"]),
        "phi-cell-mat": (_r("--phi", phi["phi_cell.mat"]), {}, 2, ["Phi is a cell"]),
        "phi-char-mat": (_r("--phi", phi["phi_char.mat"]), {}, 2, ["Phi holds text"]),
        "phi-string-npy": (_r("--phi", phi["phi_string.npy"]), {}, 2, ["Phi holds text"]),
        "phi-structured-npy": (_r("--phi", phi["phi_struct.npy"]), {}, 2,
                               ["Phi is a struct / structured array"]),
        "phi-npz-named-npy": (_r("--phi", phi["phi_npz.npy"]), {}, 2,
                              ["an .npz archive named .npy"]),
        "cache-is-a-file": (_r(), {"CS_BENCH_CACHE": str(d / "a_file")}, 2,
                            ["cannot use the run cache", "a_file is a file, not a folder",
                             "CS_BENCH_CACHE", "--no-cache"]),
        "train-cache-is-a-file": (["train", "ista-net", "--ratio", "0.25", "--phases", "1",
                                   "--nf", "4", "--epochs", "1", *TINY],
                                  {"CS_BENCH_CACHE": str(d / "a_file"),
                                   "CS_BENCH_WEIGHTS": str(d / "weights")}, 2,
                                  ["a_file is a file where a folder must be", "CS_BENCH_CACHE"]),
        "noise-seed-negative": (_r("--noise-seed", "-1"), {}, 2,
                                ["--noise-seed -1 is not a seed"]),
        "phi-seed-negative": (_r("--phi-seed", "-3"), {}, 2, ["--phi-seed -3 is not a seed"]),
        "train-threads-negative": (tiny_train[:-2] + ["--threads", "-1", "--out",
                                                      str(d / "never")], {}, 2,
                                   ["--threads -1: give an integer >= 1"]),
        "train-lr-nan": (tiny_train + ["--lr", "nan"], {}, 2, ["--lr nan: give a finite number"]),
        "train-theta-init-negative": (tiny_train + ["--theta-init", "-0.5"], {}, 2,
                                      ["--theta-init -0.5: give a finite number >= 0"]),
        "train-stop-gain-negative": (tiny_train + ["--stop-gain", "-1"], {}, 2,
                                     ["--stop-gain -1.0: give a finite number >= 0"]),
        "train-ema-one": (tiny_train + ["--ema", "1"], {}, 2,
                          ["--ema 1.0: give a decay between 0 and 1"]),
        "train-stop-epochs-zero": (tiny_train + ["--stop-epochs", "0"], {}, 2,
                                   ["--stop-epochs 0: give an integer >= 1"]),
        "train-name-too-long": (tiny_train + ["--name", "n" * 300], {}, 2,
                                ["--name 'nnnn", "1 to 200 characters"]),
        "train-phi-sparse": (tiny_train + ["--phi", phi["phi_sparse.mat"]], {}, 2,
                             ["Phi is a sparse matrix"]),
        "import-qinit-sparse": (imp, {}, 2, ["Qinit is a sparse matrix"]),
        "import-ratio-above-one": (imp + ["--ratio", "5"], {}, 2, ["ratio 5.0 is out of range"]),
        "import-ratio-nan": (imp + ["--ratio", "nan"], {}, 2, ["ratio nan is out of range"]),
        "export-official-to-a-file": (["export-official", "x", str(d / "a_file")], {}, 2,
                                      ["it is a file, not a folder"]),
        # item 10
        "images-empty": (["run", "--methods", "min-norm", "--images", ""], {}, 2,
                         ["malformed image list ''"]),
        "ratio-below-one-measurement": (["run", "--methods", "min-norm", "--ratios", "1e-9"],
                                        {}, 2, ["ratio 1e-9 gives no measurement"]),
    }


PROBE = list(_probe_cases({"dir": Path("/p"), "imgs": Path("/p"), "tifs": Path("/p"),
                           "tiny": Path("/p")}))


@pytest.mark.parametrize("cid", PROBE)
def test_probe_input_is_one_line(probe_files, cid, monkeypatch, capsys):
    argv, env, code, needles = _probe_cases(probe_files)[cid]
    rc, std = _in_process(argv, env, monkeypatch, capsys)
    assert rc == code, std.err
    one_line(std.err, *needles)
    assert std.out == ""


def test_out_device_and_input_stay_untouched(probe_files, monkeypatch, capsys):
    """The refused outputs above: the device is still a device, the image still an image."""
    import stat

    before = (probe_files["imgs"] / "a.png").read_bytes()
    _in_process(_probe_cases(probe_files)["out-is-an-input-image"][0], {}, monkeypatch, capsys)
    assert (probe_files["imgs"] / "a.png").read_bytes() == before
    _in_process(_r("--out", "/dev/null"), {}, monkeypatch, capsys)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_out_fifo_is_refused(tmp_path, monkeypatch, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    rc, std = _in_process(_r("--out", str(fifo)), {}, monkeypatch, capsys)
    assert rc == 2
    one_line(std.err, "it is a FIFO, not a regular file")


def test_atomic_write_keeps_the_file_mode(tmp_path):
    from cs_bench.export import atomic_write_text

    p = tmp_path / "r.csv"
    p.write_text("old")
    os.chmod(p, 0o644)
    atomic_write_text(p, "new")
    assert p.read_text() == "new" and (os.stat(p).st_mode & 0o777) == 0o644


def test_check_outputs_is_the_early_check_for_every_command(tmp_path):
    from cs_bench.export import check_outputs

    check_outputs({"--out": tmp_path / "a.csv", "--markdown": None})
    with pytest.raises(CSBenchError, match="name the same file"):
        check_outputs({"--out": tmp_path / "a", "--md": tmp_path / "a"})
    with pytest.raises(CSBenchError, match="cannot write /proc/cs"):
        check_outputs({"--out": "/proc/cs/x.md"})


# -- item 1: cache clear and training runs -----------------------------------------------
def test_cache_clear_keeps_training_runs_and_methods_empty_is_refused(tmp_path, monkeypatch,
                                                                      capsys):
    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path / "cache"))
    ckpt = tmp_path / "cache" / "runs" / "ista-net_r0.25_np9_nf32" / "checkpoint.safetensors"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"an unfinished training run")
    assert cli.main(_r()) == 0
    capsys.readouterr()
    rc, std = _in_process(["cache", "clear", "--methods", ""], {}, monkeypatch, capsys)
    assert rc == 2
    one_line(std.err, "malformed method list ''")
    from cs_bench.store import Store

    assert Store().count() == 1  # nothing was cleared
    assert cli.main(["cache", "clear"]) == 0
    assert "removed 1 cached results" in capsys.readouterr().out
    assert Store().count() == 0 and ckpt.read_bytes() == b"an unfinished training run"


# -- item 3: non-finite reconstructions and image ranges ---------------------------------
@pytest.fixture
def diverging():
    calls = []

    @register("_fm-diverging")
    class Diverging(Method):
        def reconstruct(self, problem):
            calls.append(problem.name)
            x = problem.to_image(problem.y @ problem.Phi)
            if problem.name == "page":
                x[0, 0] = np.nan
            return x

    yield calls
    del _REGISTRY["_fm-diverging"]


def test_non_finite_reconstruction_fails_its_row_and_is_not_cached(diverging, tmp_path,
                                                                   monkeypatch, capsys):
    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path / "cache"))
    argv = ["run", "--methods", "_fm-diverging", "--ratios", "0.1", "--images", "text,page",
            "--no-progress", "--out", str(tmp_path / "r.csv")]
    assert cli.main(argv) == 1
    one_line(capsys.readouterr().err, "1 of 2 reconstructions failed", "_fm-diverging on page",
             "NaN or Inf in 1 of")
    df = pd.read_csv(tmp_path / "r.csv").set_index("image")
    assert pd.isna(df.loc["page", "psnr"]) and np.isfinite(df.loc["text", "psnr"])
    assert cli.main(argv) == 1
    assert diverging == ["text", "page", "page"]  # the failure was not cached


@pytest.mark.parametrize("case", ["float-above-255", "int16-above-255", "int32-above-255",
                                  "negative-float", "nan-pixels", "float-unit", "int32-in-range"])
def test_images_are_read_with_their_real_range_or_refused(tmp_path, case):
    import tifffile

    rng = np.random.default_rng(3)
    base = rng.random((20, 20))
    arr = {"float-above-255": base * 1000, "int16-above-255": (base * 3000).astype(np.int16),
           "int32-above-255": (base * 70000).astype(np.int32), "negative-float": base - 0.5,
           "nan-pixels": np.where(base > 0.9, np.nan, base),
           "float-unit": base.astype(np.float32),
           "int32-in-range": (base * 255).astype(np.int32)}[case]
    p = tmp_path / f"{case}.tif"
    tifffile.imwrite(p, arr)
    if case == "float-unit":
        assert np.allclose(read_image(p), arr * 255.0)
    elif case == "int32-in-range":
        assert np.array_equal(read_image(p), arr.astype(float))
    else:
        with pytest.raises(DataError, match="NaN or Inf|outside the 0-255 scale") as exc:
            read_image(p)
        assert "\n" not in str(exc.value)


def test_out_of_range_tiff_fails_its_row_in_the_run(probe_files, monkeypatch, capsys):
    argv = ["run", "--methods", "min-norm", "--ratios", "0.1", "--no-progress", "--dataset",
            str(probe_files["tifs"])]
    rc, std = _in_process(argv, {}, monkeypatch, capsys)
    assert rc == 1
    one_line(std.err, "1 of 2 reconstructions failed", "float.tif: pixel values span",
             "outside the 0-255 scale")


def test_multi_page_tiff_is_named_as_such(tmp_path):
    import tifffile

    p = tmp_path / "pages.tif"
    with tifffile.TiffWriter(p) as w:
        for _ in range(3):
            w.write(np.zeros((30, 40), np.uint8))
    with pytest.raises(DataError, match="a TIFF of 3 pages; give one image per file"):
        read_image(p)


def test_image_smaller_than_the_ssim_window_is_said_before_reconstructing(probe_files,
                                                                        monkeypatch, capsys):
    argv = ["run", "--methods", "min-norm", "--ratios", "0.1", "--no-progress", "--dataset",
            str(probe_files["tiny"])]
    rc, std = _in_process(argv, {}, monkeypatch, capsys)
    assert rc == 1
    one_line(std.err, "tiny: 5 x 6 pixels", "at least 7 pixels a side")


# -- item 4: --jobs capped ----------------------------------------------------------------
def test_jobs_are_capped_at_tasks_and_cores():
    from cs_bench.runner import worker_count

    cores = os.cpu_count() or 1
    assert worker_count(24, 1) == 1
    assert worker_count(1000, 1000) == cores
    assert worker_count(-1, 3) == min(3, cores)
    assert worker_count(-1000, 5) == 1
    with pytest.raises(CSBenchError, match="--jobs 0"):
        worker_count(0, 5)


def test_jobs_beyond_the_task_count_start_no_idle_workers(monkeypatch):
    import joblib

    seen = []
    real = joblib.Parallel.__init__

    def spy(self, n_jobs=None, **kw):
        seen.append(n_jobs)
        real(self, n_jobs=n_jobs, **kw)

    monkeypatch.setattr(joblib.Parallel, "__init__", spy)
    df = run(["min-norm"], "skimage", [0.1], images=["text"], jobs=24, progress=False,
             cache=False)  # a cached result would start no workers at all
    assert seen == [1] and df["error"].isna().all()


# -- item 6: SIGTERM ----------------------------------------------------------------------
@pytest.fixture
def terminated():
    calls = []

    @register("_fm-sigterm")
    class Sigterm(Method):
        def reconstruct(self, problem):
            calls.append(problem.name)
            if problem.name == "page" and calls.count("page") == 1:
                os.kill(os.getpid(), signal.SIGTERM)  # what timeout / a scheduler sends
                time.sleep(1)
            return problem.to_image(problem.y @ problem.Phi)

    yield calls
    del _REGISTRY["_fm-sigterm"]


def test_sigterm_in_run_is_answered_like_ctrl_c(terminated, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path / "cache"))
    handler = signal.getsignal(signal.SIGTERM)
    argv = ["run", "--methods", "_fm-sigterm", "--ratios", "0.1", "--images", "text,page",
            "--no-progress", "--out", str(tmp_path / "r.csv")]
    assert cli.main(argv) == 143
    one_line(capsys.readouterr().err, "terminated (SIGTERM)", "finished results are cached")
    assert signal.getsignal(signal.SIGTERM) is handler  # main's handler is gone again
    assert not (tmp_path / "r.csv").exists()
    assert cli.main(argv) == 0
    assert terminated == ["text", "page", "page"]  # text came from the cache


# -- item 9: the run cache holds data, never pickles --------------------------------------
def test_run_cache_never_unpickles(tmp_path, monkeypatch):
    """A crafted pickle where the old joblib cache kept results is never read, and a forged
    row of the wrong types in the store is ignored (recomputed, overwritten)."""
    import json
    import pickle
    import sqlite3

    cache = tmp_path / "cache"
    monkeypatch.setenv("CS_BENCH_CACHE", str(cache))
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    legacy = cache / "runs" / "cs_bench" / "runner" / "_keyed_evaluate" / "x"
    legacy.mkdir(parents=True)
    (legacy / "output.pkl").write_bytes(pickle.dumps(Payload()))
    good = run(["min-norm"], "skimage", [0.1], images=["text"], progress=False)
    assert not marker.exists()
    con = sqlite3.connect(cache / "results.sqlite")
    with con:
        con.execute("UPDATE results SET value_json = ?",
                    (json.dumps({"psnr": "99", "ssim": 1.0}),))
    con.close()
    again = run(["min-norm"], "skimage", [0.1], images=["text"], progress=False)
    assert again["psnr"].item() == good["psnr"].item() != 99
    from cs_bench import runner

    src = Path(runner.__file__).read_text() + (Path(runner.__file__).parent / "store.py").read_text()
    assert "import pickle" not in src and "pickle.load" not in src and "Memory(" not in src


def test_run_cache_key_holds_the_code_hash(monkeypatch, tmp_path):
    from cs_bench import runner

    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path / "cache"))
    calls = []
    real = runner.evaluate

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(runner, "evaluate", counting)
    run(["min-norm"], "skimage", [0.1], images=["text"], progress=False)
    run(["min-norm"], "skimage", [0.1], images=["text"], progress=False)
    assert len(calls) == 1  # resumed from the cache
    monkeypatch.setattr(runner, "code_id", lambda m: "edited-source")
    df = run(["min-norm"], "skimage", [0.1], images=["text"], progress=False)
    assert len(calls) == 2 and df["code"].item() == "edited-source"


# -- item 10: smaller ---------------------------------------------------------------------
def test_duplicate_ratios_and_methods_give_one_set_of_rows():
    df = run(["min-norm", "min-norm"], "skimage", [0.1, 0.1, 0.10], images=["text"],
             progress=False)
    assert len(df) == 1


@pytest.fixture
def warning_method():
    @register("_fm-warns")
    class Warns(Method):
        def reconstruct(self, problem):
            import warnings

            warnings.warn("a library's advice", RuntimeWarning, stacklevel=2)
            return problem.to_image(problem.y @ problem.Phi)

    yield
    del _REGISTRY["_fm-warns"]


def test_library_warnings_add_no_lines(warning_method, monkeypatch, capsys):
    rc, std = _in_process(["run", "--methods", "_fm-warns", "--ratios", "0.1", "--images",
                           "text", "--no-progress"], {}, monkeypatch, capsys)
    assert rc == 0 and std.err == ""


def test_damaged_weights_index_names_a_real_fix(tmp_path):
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(CSBenchError, match="train or import the weights again") as exc:
        wt.read_index(tmp_path)
    assert "weights list" not in str(exc.value)


def test_damaged_checkpoint_is_one_line(trained, tmp_path):
    """A checkpoint without its ``rng.torch`` entry, or with a tensor of the wrong shape."""
    import safetensors.torch

    from cs_bench.learned import checkpoint as ckpt
    from cs_bench.learned.nets import build

    src = trained.parent.parent / "run_ista" / "checkpoint.safetensors"
    tensors = safetensors.torch.load_file(str(src))
    meta = {ckpt.KEY: json_dumps(ckpt.read_state(src))}
    cases = {"no-rng": {k: v for k, v in tensors.items() if k != "rng.torch"},
             "wrong-shape": {k: (v[:1] if k.startswith("net.") and v.ndim else v)
                             for k, v in tensors.items()}}
    state = ckpt.read_state(src)["config"]
    for name, t in cases.items():
        p = tmp_path / f"{name}.safetensors"
        safetensors.torch.save_file(t, str(p), metadata=meta)
        net = build("ista-net", 272, phases=1, nf=4)
        opt = torch.optim.Adam(net.parameters())
        with pytest.raises(CSBenchError, match="damaged training checkpoint") as exc:
            ckpt.load(p, net, opt)
        assert "\n" not in str(exc.value), (name, state)


def json_dumps(x):
    import json

    return json.dumps(x)


# -- item 5: a real full disk (a small tmpfs; root only) ----------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs, and a helper filling it up; skipped where mounting is not allowed."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root (a real full disk cannot be made here)")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")

    def fill():
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)

    yield mnt, fill
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_real_full_cache_disk_keeps_every_computed_row(small_disk, tmp_path, monkeypatch,
                                                       capsys):
    """The cache disk fills up during a run: every computed row is kept (CSV, exit 0) with
    one warning line; a run started on the full disk is refused before any work."""
    mnt, fill = small_disk
    monkeypatch.setenv("CS_BENCH_CACHE", str(mnt / "cache"))

    @register("_fm-fills")
    class Fills(Method):
        def reconstruct(self, problem):
            if not (mnt / "filler").exists():
                fill()
            return problem.to_image(problem.y @ problem.Phi)

    try:
        out = tmp_path / "r.csv"
        argv = ["run", "--methods", "_fm-fills", "--ratios", "0.1,0.25", "--images",
                "text,page", "--no-progress", "--out", str(out)]
        rc = cli.main(argv)
        err = capsys.readouterr().err
        assert rc == 0, err
        one_line(err, "warning: 4 of 4 results could not be cached", "No space left",
                 "a rerun computes them again")
        df = pd.read_csv(out)
        assert len(df) == 4 and df["error"].isna().all() and np.isfinite(df["psnr"]).all()
        assert not [p for p in mnt.rglob("*") if p.name.endswith(".tmp")]
        rc, std = _in_process(argv, {}, monkeypatch, capsys)
        if rc == 2:  # SQLite could not open its journal: refused before any work
            one_line(std.err, "cannot use the run cache", "No space left on device",
                     "--no-cache")
        else:  # it could: the rows are computed and kept, as above
            assert rc == 0
            one_line(std.err, "could not be cached", "No space left")
    finally:
        del _REGISTRY["_fm-fills"]


def test_real_full_disk_on_out_keeps_the_previous_file(small_disk, monkeypatch, capsys):
    mnt, fill = small_disk
    out = mnt / "r.csv"
    out.write_text("the previous results\n")
    fill()
    rc, std = _in_process(_r("--out", str(out)), {}, monkeypatch, capsys)
    assert rc == 2
    one_line(std.err, f"cannot write {out}: No space left on device")
    assert out.read_text() == "the previous results\n"
    assert sorted(p.name for p in mnt.iterdir()) == ["filler", "r.csv"]


def test_real_full_disk_while_training_is_one_line(small_disk, monkeypatch, capsys):
    mnt, fill = small_disk
    monkeypatch.setenv("CS_BENCH_WEIGHTS", str(mnt / "weights"))
    fill()
    rc, std = _in_process(TRAIN + ["--name", "full", "--out", str(mnt / "run")], {},
                          monkeypatch, capsys)
    assert rc == 2, std.err
    one_line(std.err, "No space left on device", "run the same command again")
    assert not [p for p in mnt.rglob("*.tmp")]


def test_sigterm_with_jobs_stops_the_workers(tmp_path, base_env):
    """``run --jobs 2`` sent SIGTERM, to the main process alone and to its process group:
    one line, exit 143, and no worker left computing."""
    env = {**base_env, "CS_BENCH_CACHE": str(tmp_path / "cache")}
    argv = [sys.executable, "-m", "cs_bench.cli", "run", "--methods", "tval3", "--ratios",
            "0.1,0.25,0.3", "--jobs", "2", "--no-progress", "--param", "tval3.maxit=4000"]
    for target in ("main", "group"):
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env, start_new_session=True)
        kids, t0 = [], time.time()
        while len(kids) < 2 and time.time() - t0 < 120:  # the workers have started
            time.sleep(0.5)
            kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                  text=True).stdout.split()
        time.sleep(2)
        if target == "main":
            p.send_signal(signal.SIGTERM)
        else:
            os.killpg(p.pid, signal.SIGTERM)
        _, err = p.communicate(timeout=120)
        assert p.returncode == 143, err
        one_line(err, "terminated (SIGTERM)", "finished results are cached")
        t0 = time.time()
        while any(os.path.exists(f"/proc/{k}") for k in kids) and time.time() - t0 < 15:
            time.sleep(0.2)
        assert not [k for k in kids if os.path.exists(f"/proc/{k}")], target


def test_nan_in_weights_fails_the_row(trained, tmp_path, monkeypatch, capsys):
    """Weights holding NaN (a diverged training, a damaged copy whose header still parses)
    give a NaN reconstruction: the row fails, exit 1, nothing cached."""
    tensors = wt.read_tensors(trained)
    key = next(k for k, v in tensors.items() if v.is_floating_point() and v.numel() > 1)
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    bad = tmp_path / "nan.safetensors"
    wt.save(bad, tensors, wt.read_meta(trained))
    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path / "cache"))
    rc, std = _in_process(_learned("ista-net", 0.25, f"weights={bad}"), {}, monkeypatch, capsys)
    assert rc == 1
    one_line(std.err, "1 of 1 reconstructions failed", "ista-net on text", "NaN or Inf in")
    from cs_bench.store import Store

    assert Store().count() == 0
