"""The paper's figures render from table cells, and the speed bench runs end to end at a tiny
size (a cheap method, few repeats)."""

import functools
import re
import json

import numpy as np
import pandas as pd
import pytest

from cs_bench.paper import bench, figures


def _png(path):
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fig6_and_psnr_vs_ratio_render(tmp_path):
    rows = []
    for row in ("ISTA-Net", "FISTA-Net", "ISTA-Net*", "FISTA-Net*"):
        for g in ("gamma=0.01", "gamma=0"):
            rows.append({"table": "fig6a", "row": row, "column": g, "psnr": 27.0 + len(row) / 10})
    for nf, v in ((8, np.nan), (16, 25.0), (32, 27.9)):
        rows.append({"table": "fig6b", "row": "ISTA-Net", "column": f"Nf={nf}", "psnr": v})
    cells = pd.DataFrame(rows)
    runs = pd.DataFrame({
        "method": ["tval3", "tval3", "ista-net", "ista-net"],
        "params": ["{}", "{}", json.dumps({"weights": "ista-net_r0.1_np9_nf32"}),
                   json.dumps({"weights": "release-ista-net_r0.25"})],
        "ratio": [0.1, 0.25, 0.1, 0.25], "psnr": [22.8, 27.9, 24.0, 31.85],
        "error": [None] * 4})
    figures.write_all(cells, runs, tmp_path)
    for name in ("fig6a_symmetric.png", "fig6b_nf.png", "psnr_vs_ratio.png"):
        _png(tmp_path / name)


@pytest.mark.slow
def test_bench_runs_at_tiny_size(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "train_throughput",
                        functools.partial(bench.train_throughput, steps=2, batch=8, rounds=2,
                                          variants=["fp32", "fp32, batch 32"]))
    monkeypatch.setattr(bench, "peak_gflops", functools.partial(bench.peak_gflops, n=256))
    real_images = bench._images
    monkeypatch.setattr(bench, "_images", lambda *a: (real_images(*a)[0][:2], "skimage"))
    monkeypatch.setattr(bench, "growth", lambda *a, **k: [])
    df = bench.run_bench(tmp_path, methods=["min-norm"], repeats=1, dataset="skimage",
                         log=lambda *a: None)
    md = (tmp_path / "bench.md").read_text()
    assert "min-norm" in md and (tmp_path / "bench.csv").is_file()
    assert "- fp32, batch 32: " in md and "x fp32)" in md
    assert set(df.method) == {"min-norm"} and (df.seconds > 0).all()


def test_phases_table_and_figure_at_tiny_size(tmp_path, monkeypatch):
    from cs_bench.learned.train import TrainConfig, train
    from cs_bench.learned.trainset import Recipe
    from cs_bench.paper.phases import write_phases

    monkeypatch.setenv("CS_BENCH_WEIGHTS", str(tmp_path / "w"))
    rec = Recipe(source="synthetic", n_blocks=64, n_val=16, seed=0)
    for m in ("ista-net", "fista-net"):
        train(TrainConfig(method=m, ratio=0.25, phases=2, nf=4, epochs=1, batch=32, recipe=rec,
                          name=f"tiny-{m}", out=str(tmp_path / m), checkpoint_every=0,
                          threads=1), progress=False, log=lambda *a: None)
    rng = np.random.default_rng(0)
    imgs = {"a": rng.random((40, 50)), "b": rng.random((33, 33))}
    df = write_phases({"ISTA-Net": ("ista-net", "tiny-ista-net"),
                       "FISTA-Net": ("fista-net", "tiny-fista-net")}, imgs, tmp_path, show="b")
    assert len(df) == 2 * 2 * 3  # models x images x (x(0) + 2 phases)
    assert set(df.phase) == {0, 1, 2} and np.isfinite(df.psnr).all()
    # x(0) is Qinit y for both networks: the same image, the same PSNR
    x0 = df[df.phase == 0].pivot(index="image", columns="model", values="psnr")
    assert np.allclose(x0["ISTA-Net"], x0["FISTA-Net"])
    _png(tmp_path / "phases.png")
    assert re.search(r"\|\s+phase\s+\|\s+FISTA-Net", (tmp_path / "phases.md").read_text())


def test_pareto_marks_the_front(tmp_path):
    from cs_bench.paper.tables import write_pareto

    cells = pd.DataFrame({"table": ["table2"] * 3, "ratio": [0.25] * 3,
                          "row": ["Fast", "Slow but good", "Slow and bad"],
                          "method": ["a", "b", "c"],
                          "params": ["{}", '{"weights": "w1"}', "{}"]})
    # a run row holds every parameter (defaults too); the cell only the ones it sets
    runs = pd.DataFrame({"method": list("aabbcc") + ["b", "a"],
                         "params": ['{"iters": 30}'] * 2 + ['{"weights": "w1", "x": 1}'] * 2
                         + ["{}"] * 2 + ['{"weights": "w2", "x": 1}', '{"iters": 30}'],
                         "scope": ["block"] * 7 + ["image"], "ratio": [0.25] * 8,
                         "psnr": [25, 26, 30, 31, 20, 21, 99, 99],
                         "seconds": [0.1, 0.1, 9, 11, 50, 50, 0.01, 0.01],
                         "error": [None] * 8, "phi": ["seed:0"] * 8, "image": list("xyxyxyxx")})
    pts = write_pareto(runs, cells, tmp_path)
    # other weights and the other scope are not Table 2's points
    assert sorted(pts.psnr) == [20.5, 25.5, 30.5]
    md = (tmp_path / "pareto.md").read_text()
    assert len(pts) == 3 and "| Slow and bad" in md
    front = [ln for ln in md.splitlines() if re.search(r"\|\s*yes\s*\|$", ln)]
    assert len(front) == 2 and not any("Slow and bad" in ln for ln in front)
    _png(tmp_path / "pareto.png")
    assert "all timed in the same" in md
    # a method whose rows were reused from an earlier run is named as not timed in this one
    write_pareto(runs, cells, tmp_path, reused=("b",))
    md = (tmp_path / "pareto.md").read_text()
    assert "except Slow but good, whose rows" in md and "all timed" not in md
    assert "a CPU the rows do not record" in md
    write_pareto(runs.assign(cpu="Some CPU"), cells, tmp_path, reused={"b": ["Some CPU"]})
    assert "(`--reuse`) on Some CPU;" in (tmp_path / "pareto.md").read_text()


def test_table2_names_where_reused_rows_were_timed():
    from cs_bench.paper.tables import _reused_text

    assert _reused_text(()) == ""
    assert "do not record the CPU" in _reused_text(["d-amp"])
    text = _reused_text({"d-amp": ["CPU A"], "nlr-cs": ["CPU A", "CPU B"]})
    assert "D-AMP, NLR-CS" in text and "timed on CPU A, CPU B" in text
    assert "do not record" in _reused_text({"d-amp": ["CPU A"], "nlr-cs": []})


@pytest.mark.parametrize("argv, message", [
    (["bench", "--out", "/proc/cs-bench-test"], "cannot write /proc/cs-bench-test/bench.md"),
    (["bench", "--repeats", "0"], "--repeats must be at least 1"),
    (["tables", "--out", "/proc/cs-bench-test"], "cannot write /proc/cs-bench-test/table2.md"),
])
def test_bench_and_tables_refuse_bad_arguments_before_any_work(argv, message, capsys):
    from cs_bench.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
