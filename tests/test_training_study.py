"""The training study's staged strategy (progressive depth) on a tiny synthetic training set:
a shallow run, then the full network carried from it, logged as one run."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("torch")

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "training_study.py"


@pytest.fixture
def study(tmp_path, monkeypatch):
    from cs_bench.learned.trainset import Recipe

    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CS_BENCH_WEIGHTS", str(tmp_path / "weights"))
    spec = importlib.util.spec_from_file_location("training_study", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(mod, "EPOCHS", 3)
    monkeypatch.setattr(mod, "EPOCH_BLOCKS", 64)
    monkeypatch.setattr(mod, "RECIPE", Recipe(source="synthetic", n_blocks=256, n_val=32))
    monkeypatch.setitem(mod.STRATEGIES, "tiny-progressive",
                        ("test", {"lr": 1e-3, "schedule": "constant", "init": "identity",
                                  "grow": (2, 1)}))
    return mod


def test_progressive_depth_grows_and_logs_one_run(study):
    first, full = study.stages("tiny-progressive")
    assert (first.phases, first.epochs, full.phases, full.epochs) == (2, 1, 9, 2)
    assert full.init_from == str(Path(first.out) / "best.safetensors")
    (one,) = study.stages("paper")  # an unstaged strategy: one run from its own start
    assert not one.init_from and one.phases == 9
    study.run("tiny-progressive")
    assert study.finished("tiny-progressive")
    rows = study.read_log("tiny-progressive")
    # shallow: epochs 0-1; full (its epoch 0 is the carried network): epochs 1-3, continuing
    assert [r["epoch"] for r in rows] == ["0", "1", "1", "2", "3"]
    assert [int(r["steps"]) for r in rows] == [0, 1, 1, 2, 3]
    cpu = [float(r["cpu_seconds"]) for r in rows]
    assert cpu == sorted(cpu)
    # the carried start repeats the shallow net's last phase: it computes more ISTA steps, so
    # it validates within a small margin of the shallow net it grew from, or above it
    assert float(rows[2]["val_psnr"]) > float(rows[1]["val_psnr"]) - 1.0
    assert study._status("tiny-progressive", rows) == "done"
    study.run("tiny-progressive")  # finished: nothing runs again
    assert len(study.read_log("tiny-progressive")) == len(rows)
