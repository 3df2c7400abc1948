"""``cs-bench zoo-promote``: a training run replaces a shipped zoo model only when it validates
higher on the same T91 blocks (the zoo never regresses)."""

import csv
import os
from pathlib import Path

import pytest
import torch

from cs_bench.errors import CSBenchError
from cs_bench.learned import checkpoint as ckpt
from cs_bench.learned import weights as wt
from cs_bench.paper import zoo

NAME = "ista-net_r0.25_np9_nf32"
TRAINSET = {"key": "k1", "recipe": {"source": "t91"}}


def _meta(val, **kw):
    return {"method": "ista-net", "ratio": 0.25, "phases": 9, "nf": 32, "gamma": 0.01,
            "phi": {"kind": "harness", "seed": 0}, "trainset": TRAINSET, "val_psnr": val,
            "best_epoch": 2, "epochs_done": 2, **kw}


def _run(tmp_path, val, **kw):
    run = tmp_path / "study-x"
    run.mkdir()
    wt.save(run / "best.safetensors", {"net.w": torch.full((2,), val)}, _meta(val, **kw))
    with open(run / "log.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["epoch", "val_psnr", "cpu_seconds"])
        w.writeheader()
        w.writerows([{"epoch": 1, "val_psnr": val - 1, "cpu_seconds": 100},
                     {"epoch": 2, "val_psnr": val, "cpu_seconds": 200}])
    return run


@pytest.fixture
def package(tmp_path, monkeypatch):
    folder = tmp_path / "package"
    folder.mkdir()
    monkeypatch.setattr(wt, "package_dir", lambda: folder)
    wt.install({"net.w": torch.zeros(2)}, _meta(24.0), NAME, folder=folder)
    return folder


def test_a_better_run_replaces_the_shipped_model(tmp_path, package):
    run = _run(tmp_path, 25.0)
    path = zoo.promote(run, NAME, log=lambda m: None)
    meta = wt.read_meta(path)
    assert path == package / f"{NAME}.safetensors"
    assert meta["val_psnr"] == 25.0 and meta["promoted_from"] == "study-x"
    assert meta["cpu_seconds"] == 200.0  # the best epoch's row of the run's log
    assert torch.equal(wt.read_tensors(path)["net.w"], torch.full((2,), 25.0))
    assert zoo.shipped(NAME)["val_psnr"] == 25.0


@pytest.mark.parametrize("val, kw, match", [
    (23.5, {}, "not above"),
    (24.0, {}, "not above"),
    (26.0, {"trainset": {"key": "k2"}}, "not comparable"),
    (26.0, {"phi": {"kind": "stored"}}, "not comparable"),
    (26.0, {"nf": 16}, "not the zoo model"),
])
def test_a_run_that_does_not_beat_or_match_is_refused(tmp_path, package, val, kw, match):
    before = wt.read_meta(package / f"{NAME}.safetensors")
    with pytest.raises(CSBenchError, match=match):
        zoo.promote(_run(tmp_path, val, **kw), NAME, log=lambda m: None)
    assert wt.read_meta(package / f"{NAME}.safetensors") == before


@pytest.mark.parametrize("epochs, ended", [
    (56, "not yet: promoted during the run, after epoch 2"), (2, "budget: all 2 epochs")])
def test_the_start_and_the_end_are_taken_from_the_checkpoint(tmp_path, package, epochs, ended):
    from cs_bench.learned.train import TrainConfig

    run = _run(tmp_path, 25.0)
    net = torch.nn.Linear(2, 2)
    cfg = TrainConfig(method="ista-net", ratio=0.25, init="identity", epochs=epochs,
                      schedule="cosine", stop_gain=zoo.STOP_GAIN)
    ckpt.save(run / "checkpoint.safetensors", net, torch.optim.Adam(net.parameters()),
              {"config": cfg.to_dict()})
    meta = wt.read_meta(zoo.promote(run, NAME, log=lambda m: None))
    assert meta["init"] == "identity" and meta["ended"] == ended


def test_unknown_model_and_missing_run_are_one_line(tmp_path, package):
    with pytest.raises(CSBenchError, match="zoo model"):
        zoo.promote(tmp_path, "ista-net_r0.33", log=lambda m: None)
    with pytest.raises(CSBenchError, match="no best.safetensors"):
        zoo.promote(tmp_path / "nowhere", NAME, log=lambda m: None)


def test_done_counts_blocks_seen_whatever_the_epoch_length():
    e = zoo.entry(NAME)
    assert zoo.epochs_for(e, "cpu") == zoo.CAMPAIGN[NAME]
    full = 88_912
    whole = {"training_blocks": full}
    budget = zoo.CAMPAIGN[NAME] * zoo.CAMPAIGN_BLOCKS
    # three whole epochs (the earlier cpu budget) are short of the campaign
    assert not zoo.is_done(e, "cpu", {**whole, "epochs_done": 3, "epoch_blocks": full})
    assert zoo.is_done(e, "cpu", {**whole, "epochs_done": -(-budget // full), "epoch_blocks": full})
    assert zoo.is_done(e, "cpu", {**whole, "epochs_done": zoo.CAMPAIGN[NAME],
                                  "epoch_blocks": zoo.CAMPAIGN_BLOCKS})
    # a run that finished its budget without beating the shipped weights is not rerun
    log = [{"epoch": str(zoo.CAMPAIGN[NAME])}]
    assert zoo.is_done(e, "cpu", {**whole, "epochs_done": 3, "epoch_blocks": full}, log)
    assert not zoo.is_done(e, "cpu", None, [{"epoch": "4"}])
    # a run the stop rule ended (flat after its cosine decayed) is done too
    flat = [{"epoch": str(k), "lr": str(1e-3 if k < 40 else 1e-5), "val_psnr": str(25 + k / 1e4)}
            for k in range(1, 45)]
    assert zoo.is_done(e, "cpu", {**whole, "epochs_done": 3, "epoch_blocks": full}, flat)
    assert not zoo.is_done(e, "cpu", {**whole, "epochs_done": 3, "epoch_blocks": full}, flat[:41])
    # the Tier 2 ablations: one short epoch each
    t2 = next(x for x in zoo.ZOO if x.tier == 2)
    assert zoo.is_done(t2, "cpu", {**whole, "epochs_done": 1,
                                   "epoch_blocks": zoo.TIER2_CPU_BLOCKS})


@pytest.mark.parametrize("val, installed", [(25.0, True), (23.0, False)])
def test_train_zoo_installs_a_finished_run_only_if_it_beats_the_shipped(
        tmp_path, package, monkeypatch, val, installed):
    import cs_bench.learned.train as tr

    seen = {}

    def fake_train(cfg, resume=False, install=True, **kw):
        seen.update(init=cfg.init, epoch_blocks=cfg.epoch_blocks, install=install,
                    compile=cfg.compile, stop=(cfg.stop_gain, cfg.stop_epochs))
        run = tmp_path / "zoo_runs" / NAME
        wt.save(run / "best.safetensors", {"net.w": torch.full((2,), val)}, _meta(val))
        return {"status": "done", "weights": None}

    monkeypatch.setattr(tr, "train", fake_train)
    said = []
    assert zoo.train_zoo(only=[NAME], root=str(tmp_path), log=said.append) == 0
    # the campaign: from scratch with the study's start, short epochs, installed by the zoo
    assert seen == {"init": zoo.CPU_INIT, "epoch_blocks": zoo.CAMPAIGN_BLOCKS, "install": False,
                    "compile": zoo.CAMPAIGN_COMPILE, "stop": (zoo.STOP_GAIN, zoo.STOP_EPOCHS)}
    assert (zoo.shipped(NAME)["val_psnr"] == val) is installed
    assert ("shipped weights are kept" in said[-1]) is not installed


DERIVED = "ista-net_r0.1_np9_nf32"  # grows from NAME (Qinit solved for 0.1)


def _derived(package, source_sha):
    meta = {**_meta(21.0), "ratio": 0.1, "init_from": {"name": NAME, "sha256": source_sha}}
    wt.install({"net.w": torch.zeros(2)}, meta, DERIVED, folder=package)


def _source_ended(tmp_path):
    """The run of NAME, the warm start of DERIVED, has spent its epochs."""
    run = tmp_path / "zoo_runs" / NAME
    run.mkdir(parents=True, exist_ok=True)
    (run / "log.csv").write_text(f"epoch,val_psnr\n{zoo.CAMPAIGN[NAME]},24.0\n")


def test_a_model_whose_warm_start_improved_trains_again(tmp_path, package):
    e = zoo.entry(DERIVED)
    now = wt.sha256(package / f"{NAME}.safetensors")
    run = tmp_path / "zoo_runs" / DERIVED
    _derived(package, now)
    assert zoo.stale_start(e, "cpu", zoo.shipped(DERIVED), run) == ""
    _derived(package, "an earlier sha")
    assert zoo.stale_start(e, "cpu", zoo.shipped(DERIVED), run) == NAME
    # a run already made from the current source is not stale (it ran and did not beat)
    run.mkdir(parents=True)
    wt.save(run / "best.safetensors", {"net.w": torch.zeros(2)},
            {**_meta(20.0), "ratio": 0.1, "init_from": {"name": NAME, "sha256": now}})
    assert zoo.stale_start(e, "cpu", zoo.shipped(DERIVED), run) == ""
    # a model trained from scratch has no warm start to fall behind
    assert zoo.stale_start(zoo.entry(NAME), "cpu", zoo.shipped(NAME), run) == ""


def test_train_zoo_restarts_a_stale_run_from_the_current_source(tmp_path, package, monkeypatch):
    import cs_bench.learned.train as tr

    _derived(package, "an earlier sha")
    _source_ended(tmp_path)
    run = tmp_path / "zoo_runs" / DERIVED
    run.mkdir(parents=True)
    (run / "log.csv").write_text("epoch,val_psnr\n1,21.0\n")  # the old run: finished
    (run / "checkpoint.safetensors").write_bytes(b"old")
    seen = {}

    def fake_train(cfg, resume=False, install=True, **kw):
        seen.update(resume=resume, init_from=cfg.init_from, init=cfg.init, log=(run / "log.csv").exists())
        meta = {**_meta(22.0), "ratio": 0.1,
                "init_from": {"name": NAME, "sha256": wt.sha256(package / f"{NAME}.safetensors")}}
        wt.save(run / "best.safetensors", {"net.w": torch.ones(2)}, meta)
        return {"status": "done", "weights": None}

    monkeypatch.setattr(tr, "train", fake_train)
    monkeypatch.setattr(zoo, "CONTINUE", {})
    said = []
    assert zoo.train_zoo(only=[DERIVED], root=str(tmp_path), log=said.append) == 0
    assert seen == {"resume": False, "init_from": NAME, "init": "xavier", "log": False}
    assert any("has improved since" in m for m in said)
    assert zoo.shipped(DERIVED)["val_psnr"] == 22.0
    # installed: now made from the current source, so nothing is stale any more
    assert zoo.stale_start(zoo.entry(DERIVED), "cpu", zoo.shipped(DERIVED), run) == ""
    # a regrown run that did not beat the shipped model is not stale in a fresh checkout either
    # (its weights files stay behind; the committed start.json names the source it began from)
    _derived(package, "an earlier sha")
    (run / "best.safetensors").unlink()
    assert (run / zoo.START).is_file()
    assert zoo.stale_start(zoo.entry(DERIVED), "cpu", zoo.shipped(DERIVED), run) == ""


def test_the_campaign_keeps_its_schedule_and_the_cpu_profile_is_the_study_winner():
    from cs_bench.learned.profiles import PROFILES

    assert zoo.schedule_of(zoo.entry(NAME), "cpu") == zoo.CAMPAIGN_SCHEDULE
    assert zoo.schedule_of(zoo.entry(NAME), "paper") == ("constant", 1e-3)
    cpu = PROFILES["cpu"]
    assert (cpu["init"], cpu["schedule"], cpu["lr"]) == ("identity", "onecycle", 2e-3)
    assert zoo.schedule_of(zoo.entry(DERIVED), "cpu") == ("onecycle", zoo.FINETUNE_LR)


def test_an_ended_model_trains_on_in_a_continuation_installed_only_if_higher(
        tmp_path, package, monkeypatch):
    """A continuation warm-starts from the shipped model itself, in ``<name>.2``; once it
    is installed the model still counts as grown from its first warm start (no regrow)."""
    import cs_bench.learned.train as tr

    now = wt.sha256(package / f"{NAME}.safetensors")
    _derived(package, now)
    _source_ended(tmp_path)
    main = tmp_path / "zoo_runs" / DERIVED
    main.mkdir(parents=True)
    (main / "log.csv").write_text("epoch,val_psnr\n1,21.0\n")  # its one epoch: ended
    more = zoo.Plan(4, ("onecycle", 3e-4))
    monkeypatch.setattr(zoo, "CONTINUE", {DERIVED: more})
    runs = []

    def fake_train(cfg, resume=False, install=True, **kw):
        runs.append(cfg)
        me = {"name": DERIVED, "sha256": wt.sha256(package / f"{DERIVED}.safetensors")}
        wt.save(Path(cfg.out) / "best.safetensors", {"net.w": torch.ones(2)},
                {**_meta(21.5), "ratio": 0.1, "init_from": me})
        (Path(cfg.out) / "log.csv").write_text("epoch,val_psnr\n4,21.5\n")
        return {"status": "done", "weights": None}

    monkeypatch.setattr(tr, "train", fake_train)
    said = []
    assert zoo.train_zoo(only=[DERIVED], root=str(tmp_path), log=said.append) == 0
    (cfg,) = runs
    assert cfg.out == str(main) + zoo.CONTINUED and cfg.init_from == DERIVED
    assert (cfg.epochs, cfg.schedule, cfg.lr, cfg.epoch_blocks) == (
        4, "onecycle", 3e-4, zoo.CAMPAIGN_BLOCKS)
    meta = zoo.shipped(DERIVED)
    assert meta["val_psnr"] == 21.5 and meta["promoted_from"] == DERIVED + zoo.CONTINUED
    assert meta["first_init_from"]["name"] == NAME
    assert set(meta["earlier"]) == set(zoo.EARLIER_BUDGET)  # the continued version's budget
    assert zoo.stale_start(zoo.entry(DERIVED), "cpu", meta, main) == ""
    # ended: the next call trains nothing
    assert zoo.train_zoo(only=[DERIVED], root=str(tmp_path), log=said.append) == 0
    assert len(runs) == 1 and "continuation ended" in said[-1]


def test_a_derived_model_waits_while_its_warm_start_trains_on(tmp_path, package, monkeypatch):
    """A model grown from another waits for that model's continuation to end, so it grows
    once from the better network instead of twice."""
    import cs_bench.learned.train as tr

    _derived(package, "an earlier sha")  # stale: its source has improved
    monkeypatch.setattr(zoo, "CONTINUE", {NAME: zoo.Plan(4, ("onecycle", 3e-4))})
    runs = []

    def fake_train(cfg, resume=False, install=True, **kw):
        runs.append(cfg.out)
        return {"status": "stopped"}

    monkeypatch.setattr(tr, "train", fake_train)
    said = []
    # the source's own run has not ended
    assert zoo.train_zoo(only=[DERIVED], root=str(tmp_path), log=said.append) == 0
    assert runs == [] and said == [f"{DERIVED}: waits for {NAME} (its warm start is training); "
                                   "skipped"]
    # it has, and its continuation trains on
    _source_ended(tmp_path)
    assert zoo.train_zoo(only=[DERIVED], root=str(tmp_path), log=said.append) == 0
    assert runs == [] and said[-1] == (f"{DERIVED}: waits for {NAME}{zoo.CONTINUED} (its warm "
                                       "start is training); skipped")
    more = tmp_path / "zoo_runs" / (NAME + zoo.CONTINUED)
    more.mkdir(parents=True)
    (more / "log.csv").write_text("epoch,val_psnr\n4,24.5\n")  # its continuation has ended
    assert zoo.train_zoo(only=[DERIVED], root=str(tmp_path), log=said.append) == 0
    assert runs == [str(tmp_path / "zoo_runs" / DERIVED)]


def test_the_zoo_list_says_what_each_model_does_next(tmp_path, package, monkeypatch, capsys):
    """``cs-bench train-zoo --list``: shipped state and :func:`zoo.next_step` per model."""
    from cs_bench.cli import main

    _derived(package, "an earlier sha")  # stale, and its source's run has not ended
    monkeypatch.chdir(tmp_path)
    assert main(["train-zoo", "--list"]) == 0
    lines = {ln.split()[2]: ln for ln in capsys.readouterr().out.splitlines()}
    of = zoo.epochs_for(zoo.entry(NAME), "cpu")  # the run's budget
    assert "24.00 dB" in lines[NAME] and f"trains in {NAME}: 0 of {of} epochs done" in lines[NAME]
    assert lines[DERIVED].endswith(f"waits for {NAME}")
    assert "not trained" in lines["sda_r0.1"] and "trains in sda_r0.1" in lines["sda_r0.1"]
    # once the source has ended and DERIVED's run is under way from it, its progress shows
    _source_ended(tmp_path)
    monkeypatch.setattr(zoo, "CONTINUE", {})
    meta = {**_meta(21.0), "ratio": 0.1, "epochs_done": 0,  # shipped as is, its run to come
            "init_from": {"name": NAME, "sha256": "an earlier sha"}}
    wt.install({"net.w": torch.zeros(2)}, meta, DERIVED, folder=package, overwrite=True)
    run = tmp_path / "zoo_runs" / DERIVED
    run.mkdir(parents=True)
    now = wt.sha256(package / f"{NAME}.safetensors")
    (run / zoo.START).write_text(f'{{"init_from": "{NAME}", "sha256": "{now}"}}\n')
    (run / "log.csv").write_text("epoch,val_psnr\n0,21.0\n")  # its start, validated
    (run / ".lock").write_text(str(os.getpid()))
    step = zoo.next_step(zoo.entry(DERIVED), root=str(tmp_path))
    of = zoo.epochs_for(zoo.entry(DERIVED), "cpu")
    assert zoo.describe(step) == f"trains in {DERIVED}: 0 of {of} epochs done, training now"
    assert zoo.describe(zoo.next_step(zoo.entry(NAME), root=str(tmp_path))) == "done"


def test_an_interrupted_regrow_resumes_though_the_old_weights_spent_their_budget(
        tmp_path, package, monkeypatch):
    """The shipped weights made from the earlier source spent the budget; the regrow from the
    current source, stopped midway, still trains until its own run ends."""
    _derived(package, "an earlier sha")
    _source_ended(tmp_path)
    monkeypatch.setattr(zoo, "CONTINUE", {})
    run = tmp_path / "zoo_runs" / DERIVED
    run.mkdir(parents=True)
    now = wt.sha256(package / f"{NAME}.safetensors")
    (run / zoo.START).write_text(f'{{"init_from": "{NAME}", "sha256": "{now}"}}\n')
    (run / "log.csv").write_text("epoch,val_psnr\n0,21.0\n")  # stopped in its first epoch
    assert zoo.stale_start(zoo.entry(DERIVED), "cpu", zoo.shipped(DERIVED), run) == ""
    step = zoo.next_step(zoo.entry(DERIVED), root=str(tmp_path))
    assert (step.action, step.why) == ("trains", "")  # resumes, no restart
    (run / "log.csv").write_text("epoch,val_psnr\n0,21.0\n1,20.9\n")  # ended, did not beat
    assert zoo.next_step(zoo.entry(DERIVED), root=str(tmp_path)).action == "done"


def test_the_zoo_list_says_what_a_run_has_left_at_its_pace(tmp_path):
    """The CPU-hours a run's remaining epochs cost at most, at the median CPU-seconds per
    epoch of its last epochs (its log's cumulative ``cpu_seconds``)."""
    run = tmp_path / "zoo_runs" / NAME
    run.mkdir(parents=True)
    rows = [f"{k},{20 + k / 10},{900 * k + (300 if k == 2 else 0)}" for k in range(5)]
    (run / "log.csv").write_text("epoch,val_psnr,cpu_seconds\n" + "\n".join(rows) + "\n")
    line = zoo.describe(zoo.Step("trains", str(run), epochs=12))
    assert line == f"trains in {NAME}: 4 of 12 epochs done, at most 2.0 CPU-h left at its pace"
    (run / "log.csv").write_text("epoch,val_psnr\n0,20.0\n1,20.1\n")  # no CPU time recorded
    assert zoo.describe(zoo.Step("trains", str(run), epochs=12)) == \
        f"trains in {NAME}: 1 of 12 epochs done"
