"""Command-line polish of issue 19: a reader that stops early, one progress flag, the train
profile's default, the missing-weights error naming the method's own ratios, and the
Markdown summary's image count, spread and seconds per ratio."""

import os
import subprocess
import sys

import pandas as pd
import pytest

from cs_bench.cli import BROKEN_PIPE_EXIT, build_parser
from cs_bench.export import markdown_table, summary
from cs_bench.runner import run


# -- cs-bench ... | head ------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["run", "--methods", "min-norm", "--ratios", "0.1", "--images", "text", "--no-cache",
     "--no-progress"],
    ["list"],
    ["--help"],
])
def test_a_closed_pipe_ends_the_command_quietly(argv):
    """``cs-bench run ... | head``: the reader is gone before the command writes a byte (a
    deterministic ``head`` that has already exited). No traceback, no 'internal error'."""
    r, w = os.pipe()
    os.close(r)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    try:
        proc = subprocess.run([sys.executable, "-m", "cs_bench.cli", *argv], stdout=w,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=300)
    finally:
        os.close(w)
    assert proc.stderr == ""
    assert proc.returncode in (0, BROKEN_PIPE_EXIT)
    if argv[0] != "--help":  # argparse itself swallows a failed write of the help text
        assert proc.returncode == BROKEN_PIPE_EXIT


def test_run_piped_into_head_prints_its_first_line(tmp_path):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "CS_BENCH_CACHE": str(tmp_path)}
    cmd = (f"{sys.executable} -m cs_bench.cli run --methods min-norm --ratios 0.1 --images "
           "text --no-progress | head -n 1")
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.startswith("PSNR (dB) and SSIM")


# -- one progress flag, train's default profile ---------------------------------------------
@pytest.mark.parametrize("flag", ["--no-progress", "--quiet"])
def test_run_and_train_share_one_progress_flag(flag):
    p = build_parser()
    assert p.parse_args(["run", "--methods", "min-norm", flag]).no_progress is True
    assert p.parse_args(["train", "ista-net", "--ratio", "0.25", flag]).no_progress is True
    assert p.parse_args(["run", "--methods", "min-norm"]).no_progress is False


def test_train_profile_defaults_to_cpu():
    pytest.importorskip("torch")
    from cs_bench.learned.cli import config_from_args
    from cs_bench.learned.profiles import PROFILES

    p = build_parser()
    cfg = config_from_args(p.parse_args(["train", "ista-net", "--ratio", "0.25"]))
    assert cfg.profile == "cpu" and cfg.epochs == PROFILES["cpu"]["epochs"]
    cfg = config_from_args(p.parse_args(["train", "ista-net", "--ratio", "0.25", "--profile",
                                         "paper"]))
    assert cfg.profile == "paper" and cfg.epochs == 300
    train = next(a for a in p._subparsers._group_actions[0].choices["train"]._actions
                 if "--profile" in a.option_strings)
    assert "default cpu" in train.help


# -- the missing-weights error ----------------------------------------------------------------
def test_missing_weights_name_the_methods_own_ratios(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from cs_bench.learned import weights as wt

    monkeypatch.setenv("CS_BENCH_WEIGHTS", str(tmp_path / "no-user-weights"))
    df = run(["ista-net", "reconnet"], "skimage", [0.33], images=["text"], progress=False)
    err = df.set_index("method")["error"]
    for method, other in (("ista-net", "reconnet"), ("reconnet", "ista-net")):
        msg = err[method]
        own = sorted({r for n, r in wt.own_weights(method) if n == wt.default_name(method, r)})
        assert own, f"no shipped {method} weights"
        assert "\n" not in msg and len(msg) < 400, msg  # one line, not every file listed
        assert f"{method} has weights" in msg
        assert "at ratios " + ", ".join(f"{r:g}" for r in own) in msg
        assert f"cs-bench info {method}" in msg
        assert f"train them with: cs-bench train {method} --ratio 0.33" in msg
        assert f"{other}_r" not in msg and "fista" not in msg  # no other method's weights


def test_missing_weights_with_other_settings_say_so(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("CS_BENCH_WEIGHTS", str(tmp_path / "no-user-weights"))
    df = run(["ista-net"], "skimage", [0.33], images=["text"], params={"ista-net": {"nf": 7}},
             progress=False)
    msg = df["error"].item()
    assert "ista-net has no weights with Np=9, Nf=7; its default weights are at ratios" in msg
    assert "--nf 7" in msg and len(msg) < 400


# -- the Markdown summary ---------------------------------------------------------------------
def test_markdown_summary_has_image_count_spread_and_seconds_per_ratio():
    df = run(["min-norm"], "skimage", [0.1, 0.25], images=["text", "page", "coins"],
             progress=False)
    s = summary(df)
    assert list(s["images"]) == [3, 3] and list(s["failed"]) == [0, 0]
    for ratio, row in s.set_index("ratio").iterrows():
        scores = df[df.ratio == ratio]
        assert row["psnr_sd"] == pytest.approx(scores["psnr"].std())
        assert row["seconds"] == pytest.approx(scores["seconds"].mean())
    table = [line for line in markdown_table(df).splitlines() if line.startswith("| min-norm")]
    assert len(table) == 2  # one row per ratio
    for line, (_, row) in zip(table, s.iterrows()):
        cells = [c.strip() for c in line.strip("|").split("|")]
        method, scope, ratio, images, psnr, ssim, secs = cells
        assert float(ratio) == row["ratio"] and images == "3"
        assert psnr == f"{row['psnr']:.2f} ± {row['psnr_sd']:.2f}"
        assert ssim == f"{row['ssim']:.4f} ± {row['ssim_sd']:.4f}"
        assert secs == f"{row['seconds']:.3g}"  # this ratio's seconds, not all ratios'


def test_markdown_summary_counts_failures_and_one_image():
    df = pd.DataFrame({"method": ["a", "a", "b"], "scope": "block", "ratio": 0.1,
                       "noise_sigma": 0.0, "image": ["x", "y", "x"],
                       "psnr": [20.0, None, None], "ssim": [0.5, None, None],
                       "seconds": [1.0, None, None], "error": [None, "boom", "bad"]})
    text = markdown_table(df)
    header = next(line for line in text.splitlines() if line.startswith("| method"))
    assert "failed" in header
    a = next(line for line in text.splitlines() if line.startswith("| a "))
    b = next(line for line in text.splitlines() if line.startswith("| b "))
    assert [c.strip() for c in a.strip("|").split("|")][3:6] == ["1", "1", "20.00"]
    assert [c.strip() for c in b.strip("|").split("|")][3:6] == ["0", "1", "-"]
    assert "Failures:" in text


def test_train_takes_the_start_from_the_profile_or_init():
    pytest.importorskip("torch")
    from cs_bench.errors import CSBenchError
    from cs_bench.learned.cli import config_from_args
    from cs_bench.learned.train import TrainConfig

    p = build_parser()
    base = ["train", "ista-net", "--ratio", "0.25"]
    assert config_from_args(p.parse_args(base)).init == "identity"  # the cpu profile's
    assert config_from_args(p.parse_args(base + ["--profile", "paper"])).init == "xavier"
    assert config_from_args(p.parse_args(base + ["--init", "xavier"])).init == "xavier"
    with pytest.raises(SystemExit):
        p.parse_args(base + ["--init", "zeros"])
    with pytest.raises(CSBenchError, match="unknown init 'zeros'; valid: xavier, identity"):
        TrainConfig(method="ista-net", ratio=0.25, init="zeros").check()
