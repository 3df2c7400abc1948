"""scripts/save_training.py: what a commit of training progress keeps, in a throwaway git
repository: every run's log; an unfinished run's checkpoint and best epoch; an ended run's
weights files leave the index and stay on disk."""

import csv
import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "save_training.py"
pytestmark = pytest.mark.skipif(not shutil.which("git"), reason="no git on this machine")


def _git(*args):
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def _run(root, name, epochs, files=("checkpoint.safetensors", "best.safetensors")):
    run = root / "zoo_runs" / name
    run.mkdir(parents=True)
    with open(run / "log.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["epoch", "steps", "lr", "val_psnr"])
        w.writeheader()
        for k in range(epochs + 1):  # rising validation: the stop rule never ends it
            w.writerow({"epoch": k, "steps": 200 * k, "lr": 3e-4, "val_psnr": 20 + k})
    for f in files:
        (run / f).write_bytes(f"{name}/{f}".encode())
    return run


@pytest.fixture
def save(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _git("init", "-q")
    _git("config", "user.email", "t@example.org")
    _git("config", "user.name", "t")
    (tmp_path / ".gitignore").write_text("zoo_runs/**/checkpoint.safetensors\n"
                                         "zoo_runs/**/best.safetensors\n")
    spec = importlib.util.spec_from_file_location("save_training", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_unfinished_runs_keep_their_weights_and_ended_runs_leave_the_index(save, tmp_path,
                                                                           capsys):
    ended = _run(tmp_path, "ista-net_r0.2_np9_nf32", 8)  # its FINETUNES budget: 8 epochs
    _git("add", "-f", "zoo_runs")
    _git("commit", "-qm", "an earlier session")
    _run(tmp_path, "ista-net_r0.4_np9_nf32", 3)  # 3 of 32 epochs
    _run(tmp_path, "ista-net_r0.4_np9_nf32.2", 40)  # its continuation, all 40 epochs
    _run(tmp_path, "study-unfinished", 2, files=("checkpoint.safetensors",))
    _run(tmp_path, "study-finished", 5, files=())
    assert save.main(["--dry-run"]) == 0
    assert _git("diff", "--cached", "--name-only") == ""
    assert save.main([]) == 0
    staged = set(_git("diff", "--cached", "--no-renames", "--name-status").splitlines())
    runs = "zoo_runs/"
    assert {f"A\t{runs}ista-net_r0.4_np9_nf32/{f}" for f in
            ("checkpoint.safetensors", "best.safetensors", "log.csv")} <= staged
    assert f"A\t{runs}study-unfinished/checkpoint.safetensors" in staged
    assert f"A\t{runs}study-finished/log.csv" in staged
    assert f"A\t{runs}ista-net_r0.4_np9_nf32.2/log.csv" in staged
    assert not any("ista-net_r0.4_np9_nf32.2/" in s and "safetensors" in s for s in staged)
    assert {f"D\t{runs}ista-net_r0.2_np9_nf32/{f}" for f in
            ("checkpoint.safetensors", "best.safetensors")} <= staged
    assert (ended / "checkpoint.safetensors").is_file()  # untracked, still on disk
    assert "staged" in capsys.readouterr().out


def test_a_checkpoint_carrying_the_best_epoch_is_kept_alone(save, tmp_path, capsys):
    """The checkpoint carries the best epoch's network, so the run's best.safetensors (the
    same network with Qinit) leaves the index and stays on disk."""
    import torch
    from safetensors.torch import save_file

    run = _run(tmp_path, "ista-net_r0.3_np9_nf32", 3)  # 3 of 32 epochs
    _git("add", "-f", "zoo_runs")
    _git("commit", "-qm", "an earlier session: the checkpoint and the best epoch's file")
    save_file({"net.w": torch.ones(2), "best.w": torch.zeros(2)},
              str(run / "checkpoint.safetensors"))
    assert save.main([]) == 0
    staged = set(_git("diff", "--cached", "--no-renames", "--name-status").splitlines())
    assert f"M\tzoo_runs/{run.name}/checkpoint.safetensors" in staged
    assert f"D\tzoo_runs/{run.name}/best.safetensors" in staged
    assert (run / "best.safetensors").is_file()
    assert "its checkpoint carries it" in capsys.readouterr().out


def test_outside_the_repository_root_is_one_line(save, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path / ".git")
    assert save.main([]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
