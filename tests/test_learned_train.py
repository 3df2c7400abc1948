"""Training: the loss goes down, resume is exact, warm starts, schedules, the CLI."""

import argparse
import csv

import numpy as np
import pytest
import torch

from cs_bench.errors import CSBenchError, WeightsError
from cs_bench.learned import weights as wt
from cs_bench.learned.cli import add_commands
from cs_bench.learned.losses import loss_terms
from cs_bench.learned.nets import BlockOperator, build
from cs_bench.learned.qinit import qinit
from cs_bench.learned.train import TrainConfig, lr_at, train, warm_start
from cs_bench.learned.trainset import Recipe, load
from cs_bench.sensing import make_phi

RECIPE = Recipe(source="synthetic", n_blocks=256, n_val=64, seed=0)


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("CS_BENCH_WEIGHTS", str(tmp_path / "weights"))
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def blocks():
    return load(RECIPE, cache=False)


def _cfg(tmp_path, name, **kw):
    base = dict(method="ista-net", ratio=0.25, phases=2, nf=6, epochs=2, batch=64,
                recipe=RECIPE, name=name, out=str(tmp_path / "runs" / name), checkpoint_every=0,
                precision="fp32", device="cpu")
    return TrainConfig(**{**base, **kw})


def _weights(path):
    return {k: v for k, v in wt.read_tensors(path).items()}


def _quiet(*a):
    pass


def test_training_lowers_the_loss_and_raises_validation_psnr(tmp_path, blocks):
    cfg = _cfg(tmp_path, "lower", epochs=4)
    res = train(cfg, trainset=blocks, progress=False, log=_quiet)
    assert res["status"] == "done"
    # the same initialisation, untrained, on the training blocks
    torch.manual_seed(cfg.seed)
    Phi = torch.tensor(make_phi(0.25), dtype=torch.float32)
    op = BlockOperator(Phi, torch.tensor(qinit(blocks.moment, make_phi(0.25)), dtype=torch.float32))
    x = torch.from_numpy(blocks.train)
    net0 = build("ista-net", op.M, 2, 6)
    trained = build("ista-net", op.M, 2, 6)
    trained.load_state_dict({k[4:]: v for k, v in _weights(res["weights"]).items()
                             if k.startswith("net.")})
    with torch.no_grad():
        before = loss_terms(net0(x @ Phi.T, op, sym="block", s=x), x)["loss"]
        after = loss_terms(trained(x @ Phi.T, op, sym="block", s=x), x)["loss"]
    assert after < 0.5 * before
    h = res["history"]
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    meta = wt.read_meta(res["weights"])
    assert meta["epochs_done"] == 4 and meta["method"] == "ista-net"
    assert meta["val_psnr"] == max(r["val_psnr"] for r in h)
    assert meta["best_epoch"] == 1 + int(np.argmax([r["val_psnr"] for r in h]))
    assert meta["loss"] == "L" and meta["sym_input"] == "block" and meta["gamma"] == 0.01
    assert meta["training_blocks"] == 256 and meta["phi"] == {"kind": "harness", "seed": 0}
    assert "torch" in meta and "git_commit" in meta and meta["init_from"] is None
    with open(tmp_path / "runs" / "lower" / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]


def _run_to_end(cfg, blocks, stops):
    """Train with interruptions after the given step counts, resuming each time."""
    for i, n in enumerate(stops):
        cfg.max_steps = n
        res = train(cfg, resume=i > 0, trainset=blocks, progress=False, log=_quiet)
        assert res["status"] == "stopped"
    cfg.max_steps = None
    return train(cfg, resume=bool(stops), trainset=blocks, progress=False, log=_quiet)


@pytest.mark.parametrize("stops", [[4], [3, 2]], ids=["after-epoch-1", "mid-epochs"])
def test_interrupted_and_resumed_run_ends_with_the_same_weights(tmp_path, blocks, stops):
    ref = _run_to_end(_cfg(tmp_path, "whole", schedule="cosine"), blocks, [])
    res = _run_to_end(_cfg(tmp_path, "pieces", schedule="cosine"), blocks, stops)
    a, b = _weights(ref["weights"]), _weights(res["weights"])
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=0, atol=1e-6), k
    for ra, rb in zip(ref["history"], res["history"]):
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-6)
        assert ra["val_psnr"] == pytest.approx(rb["val_psnr"], abs=1e-5)


@pytest.mark.parametrize("stop", [8, 6], ids=["at-an-epoch-end", "mid-epoch"])
def test_resume_without_best_safetensors_writes_it_again_from_the_checkpoint(tmp_path, blocks,
                                                                             stop):
    """A checkout that carried only the checkpoint: it carries the best epoch's network, so
    the resumed run has the same best epoch, with the same tensors, as one that kept the
    file; it is installed when no later epoch beats it."""
    cfg = _cfg(tmp_path, "carried", epochs=3, max_steps=stop)
    first = train(cfg, trainset=blocks, progress=False, log=_quiet)
    best = tmp_path / "runs" / "carried" / "best.safetensors"
    kept = _weights(best)
    best.unlink()
    lines = []
    cfg.max_steps = 1  # one step more: no epoch ends, the best stays
    res = train(cfg, resume=True, trainset=blocks, progress=False, log=lines.append)
    assert any("written again from the checkpoint" in line for line in lines)
    assert res["best"] == first["best"]
    again = _weights(best)
    assert again.keys() == kept.keys() and all(torch.equal(again[k], kept[k]) for k in kept)
    assert wt.read_meta(best)["best_epoch"] == first["best"]["epoch"]


def _drop_best_from_checkpoint(path):
    """The checkpoint as written before checkpoints carried the best epoch's network."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys() if not k.startswith("best.")}
    save_file(tensors, str(path), metadata=meta)


def test_an_older_checkpoint_takes_the_best_epoch_from_best_safetensors(tmp_path, blocks):
    """A checkpoint that does not carry the best epoch, beside its best.safetensors: the
    resumed run's next checkpoint carries that file's network."""
    from cs_bench.learned.checkpoint import read_best

    cfg = _cfg(tmp_path, "older", epochs=3, max_steps=6)
    train(cfg, trainset=blocks, progress=False, log=_quiet)
    run = tmp_path / "runs" / "older"
    _drop_best_from_checkpoint(run / "checkpoint.safetensors")
    assert read_best(run / "checkpoint.safetensors") is None
    cfg.max_steps = 1
    train(cfg, resume=True, trainset=blocks, progress=False, log=_quiet)
    carried, file = read_best(run / "checkpoint.safetensors"), _weights(run / "best.safetensors")
    assert carried.keys() == {k[4:] for k in file if k.startswith("net.")}
    assert all(torch.equal(carried[k], file[f"net.{k}"]) for k in carried)


@pytest.mark.parametrize("stop", [8, 6], ids=["at-an-epoch-end", "mid-epoch"])
def test_resume_without_the_best_epochs_weights_chooses_the_best_again(tmp_path, blocks, stop):
    """An older checkpoint that does not carry the best epoch's network, and no
    best.safetensors: the lost best is not claimed; the checkpoint's own weights (when
    written at an epoch's end, validated again) and the later epochs compete, and what is
    installed validates as recorded."""
    cfg = _cfg(tmp_path, "lost", epochs=3, max_steps=stop)
    assert train(cfg, trainset=blocks, progress=False, log=_quiet)["status"] == "stopped"
    best = tmp_path / "runs" / "lost" / "best.safetensors"
    best.unlink()
    _drop_best_from_checkpoint(tmp_path / "runs" / "lost" / "checkpoint.safetensors")
    lines = []
    cfg.max_steps = None
    res = train(cfg, resume=True, trainset=blocks, progress=False, log=lines.append)
    assert any("are not here" in line for line in lines)
    h = {r["epoch"]: r["val_psnr"] for r in res["history"]}
    allowed = [2, 3] if stop == 8 else [3]  # 4 steps an epoch: step 8 ends epoch 2
    meta = wt.read_meta(res["weights"])
    assert meta["best_epoch"] in allowed
    assert meta["val_psnr"] == pytest.approx(max(h[k] for k in allowed), abs=1e-5)
    assert res["best"]["epoch"] == meta["best_epoch"]


def test_resume_refuses_a_changed_configuration(tmp_path, blocks):
    cfg = _cfg(tmp_path, "changed", max_steps=2)
    assert train(cfg, trainset=blocks, progress=False, log=_quiet)["status"] == "stopped"
    other = _cfg(tmp_path, "changed", lr=5e-4)
    with pytest.raises(CSBenchError, match="lr"):
        train(other, resume=True, trainset=blocks, progress=False, log=_quiet)
    with pytest.raises(CSBenchError, match="--resume"):
        train(_cfg(tmp_path, "changed"), trainset=blocks, progress=False, log=_quiet)


def test_existing_weights_are_not_replaced_without_force(tmp_path, blocks):
    cfg = _cfg(tmp_path, "once", epochs=1)
    train(cfg, trainset=blocks, progress=False, log=_quiet)
    with pytest.raises(WeightsError, match="--force"):
        train(_cfg(tmp_path, "once", epochs=1, out=str(tmp_path / "elsewhere")),
              trainset=blocks, progress=False, log=_quiet)


def test_lstar_and_fista_and_reconnet_and_sda_train(tmp_path, blocks):
    for method, kw in [("ista-net-star", {}), ("fista-net", {"gamma": 0.0}),
                       ("reconnet-enhanced", {}), ("sda", {})]:
        res = train(_cfg(tmp_path, method, method=method, epochs=1, **kw), trainset=blocks,
                    progress=False, log=_quiet)
        meta = wt.read_meta(res["weights"])
        assert meta["method"] == method
        assert meta["loss"] == {"ista-net-star": "Lstar", "fista-net": "L"}.get(method, "mse")
        assert np.isfinite(meta["val_psnr"])


def test_warm_starts(tmp_path, blocks):
    src = train(_cfg(tmp_path, "src", epochs=1), trainset=blocks, progress=False, log=_quiet)
    op = BlockOperator(torch.tensor(make_phi(0.25), dtype=torch.float32),
                       wt.read_tensors(src["weights"])["Qinit"])
    ista = build("ista-net", op.M, 2, 6)
    ista.load_state_dict({k[4:]: v for k, v in _weights(src["weights"]).items()
                          if k.startswith("net.")})
    # FISTA-Net from ISTA-Net starts as that ISTA-Net (mu = 0)
    fista = build("fista-net", op.M, 2, 6)
    rec = warm_start(fista, "fista-net", "src")
    y = torch.rand(5, op.M)
    with torch.no_grad():
        assert torch.equal(fista(y, op).x, ista(y, op).x)
    assert rec["copied"] == 12 and rec["skipped"] == [] and rec["name"] == "src"
    # more phases: the first two are copied, the third repeats the last one
    deeper = build("ista-net", op.M, 3, 6)
    rec = warm_start(deeper, "ista-net", "src")
    assert torch.equal(deeper.layers[1].G2, ista.layers[1].G2)
    assert torch.equal(deeper.layers[2].F2, ista.layers[1].F2)
    assert rec["carry"] == {"phases": "2->3", "nf": "6->6", "exact": False}
    # fewer phases: the first one
    shallow = build("fista-net", op.M, 1, 6)
    assert warm_start(shallow, "fista-net", "src")["carry"]["phases"] == "2->1"
    assert torch.equal(shallow.layers[0].theta, ista.layers[0].theta)
    with pytest.raises(WeightsError, match="cannot initialise"):
        warm_start(build("sda", op.M), "sda", "src")
    # through train(): recorded in the metadata
    res = train(_cfg(tmp_path, "warm", method="fista-net", epochs=1, init_from="src"),
                trainset=blocks, progress=False, log=_quiet)
    assert wt.read_meta(res["weights"])["init_from"]["name"] == "src"


def test_learning_rate_schedules():
    cfg = TrainConfig(method="ista-net", ratio=0.25, lr=1e-3, schedule="cosine")
    assert lr_at(cfg, 0, 100) == pytest.approx(1e-3)
    assert lr_at(cfg, 50, 100) == pytest.approx(5e-4)
    assert lr_at(cfg, 100, 100) == pytest.approx(0.0, abs=1e-12)
    cfg.schedule = "onecycle"
    lrs = [lr_at(cfg, s, 100) for s in range(101)]
    assert int(np.argmax(lrs)) == 30 and lrs[0] == pytest.approx(1e-3 / 25)
    assert lrs[-1] == pytest.approx(1e-3 / 25e4)
    cfg.schedule = "constant"
    assert {lr_at(cfg, s, 100) for s in range(101)} == {1e-3}


def test_profiles_and_config_checks():
    paper = TrainConfig.from_profile("paper", method="ista-net", ratio=0.25)
    assert (paper.epochs, paper.lr, paper.batch, paper.schedule) == (300, 1e-3, 64, "constant")
    cpu = TrainConfig.from_profile("cpu", method="fista-net-star", ratio=0.1)
    assert cpu.epochs < paper.epochs and cpu.resolved_loss() == "Lstar"
    assert cpu.default_name() == "fista-net-star_r0.1_np9_nf32"
    star = TrainConfig(method="ista-net", ratio=0.25, loss="Lstar")
    assert star.resolved_method() == "ista-net-star"
    with pytest.raises(CSBenchError, match="profile"):
        TrainConfig.from_profile("gpu", method="ista-net", ratio=0.25)
    with pytest.raises(CSBenchError, match="loss"):
        TrainConfig(method="reconnet", ratio=0.25, loss="Lstar").check()
    with pytest.raises(CSBenchError, match="ratio"):
        TrainConfig(method="ista-net", ratio=1.5).check()


def _parser():
    p = argparse.ArgumentParser(prog="cs-bench")
    add_commands(p.add_subparsers(dest="command"))
    return p


def test_cli_train_stop_resume_and_list(tmp_path, capsys):
    p = _parser()
    argv = ["train", "ista-net", "--ratio", "0.1", "--phases", "1", "--nf", "4", "--epochs", "2",
            "--source", "synthetic", "--blocks", "128", "--val-blocks", "32", "--batch", "32",
            "--device", "cpu", "--precision", "fp32", "--no-progress", "--threads", "1",
            "--out", str(tmp_path / "run")]
    args = p.parse_args(argv + ["--max-steps", "3"])
    assert args.func(args) == 0
    assert not (tmp_path / "weights" / "ista-net_r0.1_np1_nf4.safetensors").exists()
    args = p.parse_args(argv + ["--resume"])
    assert args.func(args) == 0
    meta = wt.read_metadata("ista-net_r0.1_np1_nf4")
    assert meta["epochs_done"] == 2 and meta["trainset"]["recipe"]["source"] == "synthetic"
    args = p.parse_args(["weights", "list"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "ista-net_r0.1_np1_nf4" in out and "user" in out
    with pytest.raises(CSBenchError, match="nothing to resume"):
        args = p.parse_args(argv[:-1] + [str(tmp_path / "nowhere"), "--resume"])
        args.func(args)


def test_a_signal_asks_the_loop_to_stop_instead_of_killing_it():
    import os
    import signal

    from cs_bench.learned.train import _StopOnSignal

    messages = []
    before = signal.getsignal(signal.SIGTERM)
    with _StopOnSignal(messages.append) as s:
        assert s.requested is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert s.requested == "signal SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before
    assert "checkpoint" in messages[0]


def test_resume_keeps_the_checkpoints_warm_start_record(tmp_path, blocks):
    """A zoo re-run may name a warm start that did not exist when the run began."""
    cfg = _cfg(tmp_path, "late-init", epochs=1, max_steps=2)
    assert train(cfg, trainset=blocks, progress=False, log=_quiet)["status"] == "stopped"
    res = train(_cfg(tmp_path, "late-init", epochs=1, init_from="not-there"), resume=True,
                trainset=blocks, progress=False, log=_quiet)
    assert res["status"] == "done"
    assert wt.read_meta(res["weights"])["init_from"] is None


def test_init_from_nearest_picks_the_closest_other_ratio(tmp_path, blocks):
    def cfg(run, **kw):
        c = _cfg(tmp_path, run, **kw)
        c.name = None  # the default (zoo) name
        return c

    for r in (0.1, 0.4):
        train(cfg(f"r{r}", ratio=r, epochs=1), trainset=blocks, progress=False, log=_quiet)
    train(cfg("other-nf", ratio=0.3, nf=4, epochs=1), trainset=blocks, progress=False,
          log=_quiet)  # nearer, but another nf: not a candidate
    res = train(cfg("r0.3", ratio=0.3, epochs=1, init_from="nearest"), trainset=blocks,
                progress=False, log=_quiet)
    assert res["name"] == "ista-net_r0.3_np2_nf6"
    rec = wt.read_meta(res["weights"])["init_from"]
    assert rec["name"] == "ista-net_r0.4_np2_nf6" and rec["ratio"] == 0.4
    with pytest.raises(WeightsError, match="nearest"):
        train(_cfg(tmp_path, "lonely", method="fista-net", epochs=1, init_from="nearest"),
              trainset=blocks, progress=False, log=_quiet)


def test_bf16_autocast_training_runs_and_is_recorded(tmp_path, blocks):
    res = train(_cfg(tmp_path, "bf16", epochs=2, precision="bf16"), trainset=blocks,
                progress=False, log=_quiet)
    meta = wt.read_meta(res["weights"])
    assert meta["precision"] == "bf16" and np.isfinite(meta["val_psnr"])
    assert all(v.dtype == torch.float32 for k, v in wt.read_tensors(res["weights"]).items()
               if k.startswith("net."))
    assert res["history"][1]["train_loss"] < res["history"][0]["train_loss"]


def test_warm_start_is_epoch_0_and_epochs_0_installs_it_as_is(tmp_path, blocks):
    src = train(_cfg(tmp_path, "src0", epochs=1), trainset=blocks, progress=False, log=_quiet)
    # another ratio, no training: the source's network with Qinit solved for 0.4
    res = train(_cfg(tmp_path, "as-is", ratio=0.4, epochs=0, init_from="src0"), trainset=blocks,
                progress=False, log=_quiet)
    assert res["status"] == "done" and [h["epoch"] for h in res["history"]] == [0]
    meta = wt.read_meta(res["weights"])
    assert meta["epochs_done"] == 0 and meta["best_epoch"] == 0
    assert meta["init_from"]["name"] == "src0" and meta["val_psnr"] == res["history"][0]["val_psnr"]
    got, ref = _weights(res["weights"]), _weights(src["weights"])
    assert all(torch.equal(got[k], ref[k]) for k in ref if k.startswith("net."))
    Phi = make_phi(0.4)
    assert torch.allclose(got["Qinit"], torch.tensor(qinit(blocks.moment, Phi), dtype=torch.float32))
    # a fine-tune logs the warm start as epoch 0 and keeps it if no epoch beats it
    ft = train(_cfg(tmp_path, "ft", epochs=1, init_from="src0", lr=1e-9), trainset=blocks,
               progress=False, log=_quiet)
    with open(tmp_path / "runs" / "ft" / "log.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["0", "1"]
    h0, h1 = ft["history"]
    assert ft["best"]["val_psnr"] == max(h0["val_psnr"], h1["val_psnr"])
    with pytest.raises(CSBenchError, match="0 only with --init-from"):
        train(_cfg(tmp_path, "zero", epochs=0), trainset=blocks, progress=False, log=_quiet)


def test_reconnet_warm_start_at_another_ratio_carries_the_fc_layer(tmp_path, blocks):
    from cs_bench.learned.train import transfer_fc

    src = train(_cfg(tmp_path, "rn", method="reconnet", epochs=1), trainset=blocks,
                progress=False, log=_quiet)
    res = train(_cfg(tmp_path, "rn4", method="reconnet", ratio=0.4, epochs=0, init_from="rn"),
                trainset=blocks, progress=False, log=_quiet)
    got, ref = _weights(res["weights"]), _weights(src["weights"])
    W = ref["net.fc.weight"].double() @ torch.tensor(make_phi(0.25)) @ torch.tensor(
        qinit(blocks.moment, make_phi(0.4)))
    assert got["net.fc.weight"].shape == (1089, make_phi(0.4).shape[0])
    assert torch.allclose(got["net.fc.weight"].double(), W, atol=1e-6)
    assert torch.equal(got["net.fc.bias"], ref["net.fc.bias"])
    assert torch.equal(got["net.conv3.weight"], ref["net.conv3.weight"])
    rec = wt.read_meta(res["weights"])["init_from"]
    assert rec["fc"] == "W_a Phi_a Qinit_b" and rec["skipped"] == []
    # the carried layer beats a fresh one under the same convolutions
    M = make_phi(0.4).shape[0]
    carried, fresh = build("reconnet", M), build("reconnet", M)
    carried.load_state_dict({k[4:]: v for k, v in got.items() if k.startswith("net.")})
    fresh.load_state_dict({k[4:]: v for k, v in got.items()
                           if k.startswith("net.") and not k.startswith("net.fc.")}, strict=False)
    assert transfer_fc(build("reconnet", M), "rn", blocks.moment, make_phi(0.4)) == \
        "W_a Phi_a Qinit_b"
    x = torch.from_numpy(blocks.val)
    y = x @ torch.tensor(make_phi(0.4), dtype=torch.float32).T
    with torch.no_grad():
        err = [float(((n(y).x - x) ** 2).mean()) for n in (carried, fresh)]
    assert err[0] < err[1]


def test_short_epochs_draw_a_fresh_subset_and_validate_each(tmp_path, blocks):
    res = train(_cfg(tmp_path, "short", epochs=3, epoch_blocks=96), trainset=blocks,
                progress=False, log=_quiet)
    assert [h["steps"] for h in res["history"]] == [2, 4, 6]  # ceil(96 / 64) steps an epoch
    meta = wt.read_meta(res["weights"])
    assert meta["epoch_blocks"] == 96 and meta["training_blocks"] == 256
    with pytest.raises(CSBenchError, match="epoch_blocks must be >= 1"):
        train(_cfg(tmp_path, "zero-blocks", epoch_blocks=0), trainset=blocks, progress=False,
              log=_quiet)


def test_carry_to_more_feature_maps_is_exact_and_trainable(tmp_path):
    from cs_bench.learned.carry import carry

    torch.manual_seed(0)
    Phi = torch.tensor(make_phi(0.25), dtype=torch.float32)
    op = BlockOperator(Phi, Phi.T.contiguous())
    src = build("ista-net", op.M, 2, 4)
    wide = build("fista-net", op.M, 2, 7)
    assert carry(wide_state := wide.state_dict(), src.state_dict())["exact"]
    wide.load_state_dict(wide_state)
    y = torch.rand(3, op.M)
    with torch.no_grad():
        torch.testing.assert_close(wide(y, op).x, src(y, op).x, rtol=1e-5, atol=1e-6)
    # the new channels are not dead: every weight reading them gets a gradient
    wide(y, op).x.square().sum().backward()
    for name in ("F2", "G1", "G2"):
        g = getattr(wide.layers[1], name).grad
        assert g[:, 4:].abs().sum() > 0, name
    # narrower keeps the first channels
    narrow = build("ista-net", op.M, 2, 3)
    state = narrow.state_dict()
    assert not carry(state, src.state_dict())["exact"]
    assert torch.equal(state["layers.0.F2"], src.layers[0].F2[:3, :3])


def test_mu_gets_its_own_learning_rate_and_moves_with_it(tmp_path, blocks):
    """FISTA-Net from ISTA-Net (mu = 0): at the shared lr mu hardly moves; with mu_lr it does."""
    moved = {}
    for tag, mu_lr in (("shared", None), ("own", 1e-2)):
        cfg = _cfg(tmp_path, f"mu_{tag}", method="fista-net", epochs=1, lr=1e-4, mu_lr=mu_lr)
        res = train(cfg, trainset=blocks, progress=False, log=_quiet)
        w = _weights(res["weights"])
        mus = torch.cat([v.flatten() for k, v in w.items() if k.endswith(".mu")])
        assert mus.numel() == cfg.phases
        moved[tag] = float(mus.abs().max())
        assert wt.read_meta(res["weights"])["mu_lr"] == mu_lr
    # 4 Adam steps move a parameter by at most ~4 x its learning rate
    assert moved["shared"] <= 4.5e-4 < 4e-3 < moved["own"] <= 4.5e-2


def test_mu_lr_applies_to_fista_net_only():
    with pytest.raises(CSBenchError, match="fista-net only"):
        TrainConfig(method="ista-net", ratio=0.25, mu_lr=1e-2).check()
    with pytest.raises(CSBenchError, match="must be > 0"):
        TrainConfig(method="fista-net", ratio=0.25, mu_lr=0.0).check()


def test_identity_init_starts_as_soft_thresholded_gradient_steps(tmp_path, blocks):
    from cs_bench.learned.nets import identity_init, soft

    torch.manual_seed(0)
    net = identity_init(build("ista-net", 272, phases=3, nf=6))
    Phi = torch.tensor(make_phi(0.25), dtype=torch.float32)
    op = BlockOperator(Phi, torch.tensor(qinit(blocks.moment, make_phi(0.25)), dtype=torch.float32))
    x = torch.from_numpy(blocks.val[:8])
    y = x @ Phi.T
    out = net(y, op, sym="block", s=x)
    ref = op.initial(y)
    for _ in range(3):  # Eq. (4), then soft thresholding of the pixels themselves
        ref = soft(op.gradient_step(ref, 0.5, op.PhiTy(y)), 0.01)
    assert torch.allclose(out.x, ref, atol=1e-5)
    assert all(float(s.detach().abs().max()) < 1e-5 for s in out.sym)  # G(F(s)) = s at step 0
    # trained from it, the run logs the start as epoch 0 and records CPU time
    res = train(_cfg(tmp_path, "ident", init="identity", validate_start=True, epochs=1),
                trainset=blocks, progress=False, log=_quiet)
    assert [h["epoch"] for h in res["history"]] == [0, 1]
    assert 0 < res["history"][0]["cpu_seconds"] < res["history"][1]["cpu_seconds"]
    with pytest.raises(CSBenchError, match="applies to ISTA-Net"):
        _cfg(tmp_path, "bad", method="reconnet", init="identity").check()
    with pytest.raises(CSBenchError, match="unknown init"):
        _cfg(tmp_path, "bad2", init="zeros").check()


def test_theta_init_zero_with_identity_start_gives_x0_at_step_0(tmp_path, blocks):
    from cs_bench.learned.nets import identity_init

    net = identity_init(build("ista-net", 272, phases=3, nf=6))
    Phi = torch.tensor(make_phi(0.25), dtype=torch.float32)
    op = BlockOperator(Phi, Phi.T)  # orthonormal rows: x(0) = Phi^T y is data-consistent
    with torch.no_grad():
        for layer in net.layers:
            layer.theta.fill_(0.0)
    x = torch.from_numpy(blocks.val[:8])
    y = x @ Phi.T
    assert torch.allclose(net(y, op).x, op.initial(y), atol=1e-5)
    # the run builds its network with that threshold and records it
    res = train(_cfg(tmp_path, "theta0", init="identity", theta_init=0.0, validate_start=True,
                     epochs=1), trainset=blocks, progress=False, log=_quiet)
    assert wt.read_meta(res["weights"])["theta_init"] == 0.0
    for bad in (dict(method="reconnet", theta_init=0.0), dict(theta_init=-0.1),
                dict(theta_init=float("nan"))):
        with pytest.raises(CSBenchError, match="theta_init"):
            _cfg(tmp_path, "bad", **bad).check()


DEVICES_HERE = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES_HERE)
def test_training_and_the_probe_run_on_every_device_here(tmp_path, blocks, device):
    """The --device code paths (float32 Phi products, the precision's convolutions, a
    checkpoint a CPU resumes) under the same test on every device this machine has."""
    from cs_bench.paper.zoo import probe

    res = train(_cfg(tmp_path, f"dev-{device}", device=device, epochs=1, max_steps=2),
                trainset=blocks, progress=False, log=_quiet)
    assert res["status"] == "stopped"
    cpu = train(_cfg(tmp_path, f"dev-{device}", device="cpu", epochs=1), resume=True,
                trainset=blocks, progress=False, log=_quiet)  # a CPU finishes it
    assert cpu["status"] == "done" and np.isfinite(cpu["best"]["val_psnr"])
    assert probe(device, steps=1, batch=4, log=_quiet) > 0


def test_train_zoo_refuses_zero_workers(capsys):
    from cs_bench.cli import main

    assert main(["train-zoo", "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err


def test_the_stop_rule_ends_a_flat_run_and_says_so(tmp_path, blocks):
    # a rule no run can pass (gain below 100 dB over 1 epoch) ends the run after two epochs:
    # the second epoch's best beats the first's by less than 100 dB
    res = train(_cfg(tmp_path, "flat", epochs=5, stop_gain=100.0, stop_epochs=1), trainset=blocks,
                progress=False, log=_quiet)
    assert res["status"] == "done" and res["epochs_done"] == 2
    assert res["ended"].startswith("plateau:") and "epochs 2-2 at a constant rate" in res["ended"]
    assert wt.read_meta(res["weights"])["ended"] == res["ended"]
    # resuming an ended run trains nothing more
    again = train(_cfg(tmp_path, "flat", epochs=5, stop_gain=100.0, stop_epochs=1, force=True),
                  resume=True, trainset=blocks, progress=False, log=_quiet)
    assert again["epochs_done"] == 2 and again["ended"] == res["ended"]
    # without the rule every epoch runs; under a cosine schedule the rule waits for the decay
    full = train(_cfg(tmp_path, "full", epochs=3), trainset=blocks, progress=False, log=_quiet)
    assert full["epochs_done"] == 3 and full["ended"] == "budget: all 3 epochs"
    cos = train(_cfg(tmp_path, "cos", epochs=3, schedule="cosine", stop_gain=100.0,
                     stop_epochs=1), trainset=blocks, progress=False, log=_quiet)
    assert cos["epochs_done"] == 3  # epoch 2 ends at lr/2, above DECAYED x lr


def test_plateau_reads_log_rows_and_config_checks_the_rule():
    from cs_bench.learned.train import plateau, run_end

    rows = [{"epoch": str(e), "lr": "0.0001", "val_psnr": str(v)}
            for e, v in enumerate([20.0, 24.0, 24.1, 24.12])]
    assert plateau(rows, "constant", 1e-4, 0.05, 2) is None  # +0.12 over epochs 2-3
    assert plateau(rows, "constant", 1e-4, 0.2, 2).startswith("plateau: +0.12 dB over epochs 2-3")
    assert "after the decay" in plateau(rows, "cosine", 1e-3, 0.2, 2)  # 1e-4 <= 1e-3 / 10
    assert plateau(rows, "cosine", 5e-4, 0.2, 2) is None  # 1e-4 > 5e-4 / 10: not decayed yet
    assert plateau(rows, "cosine", 1e-3, 0.2, 3) is None  # no trained epoch before the window
    assert plateau(rows, "constant", 1e-4, None, 2) is None  # no rule
    cfg = TrainConfig(method="ista-net", ratio=0.25, epochs=3)
    assert run_end(rows, cfg) == "budget: all 3 epochs"
    assert run_end(rows[:3], cfg) is None
    for bad in (dict(stop_gain=-1.0), dict(stop_gain=float("inf")), dict(stop_epochs=0)):
        with pytest.raises(CSBenchError, match="stop_"):
            TrainConfig(method="ista-net", ratio=0.25, **bad).check()


def test_compiled_training_matches_eager(tmp_path, blocks):
    eager = train(_cfg(tmp_path, "eager", phases=1, nf=4, epochs=1), trainset=blocks,
                  progress=False, log=_quiet)
    comp = train(_cfg(tmp_path, "comp", phases=1, nf=4, epochs=1, compile=True), trainset=blocks,
                 progress=False, log=_quiet)
    assert wt.read_meta(comp["weights"])["compiled"] is True
    assert not wt.read_meta(eager["weights"])["compiled"]
    assert comp["best"]["val_psnr"] == pytest.approx(eager["best"]["val_psnr"], abs=0.01)


def test_a_network_that_fails_to_compile_trains_eagerly(tmp_path, blocks, monkeypatch):
    def broken(net):
        def call(*a, **k):
            raise RuntimeError("no C compiler here")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    said = []
    res = train(_cfg(tmp_path, "fallback", phases=1, nf=4, epochs=1, compile=True),
                trainset=blocks, progress=False, log=said.append)
    ref = train(_cfg(tmp_path, "plain", phases=1, nf=4, epochs=1), trainset=blocks,
                progress=False, log=_quiet)
    assert any("torch.compile failed (RuntimeError: no C compiler here)" in m for m in said)
    assert not wt.read_meta(res["weights"])["compiled"]
    a, b = _weights(res["weights"]), _weights(ref["weights"])
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ema_is_validated_installed_and_resumed_exactly(tmp_path, blocks):
    from cs_bench.learned import checkpoint as ckpt

    from safetensors.torch import load_file

    whole = train(_cfg(tmp_path, "ema-whole", ema=0.9, epochs=1), trainset=blocks,
                  progress=False, log=_quiet)
    pieces = _run_to_end(_cfg(tmp_path, "ema-pieces", ema=0.9, epochs=1), blocks, [3])
    a, b = _weights(whole["weights"]), _weights(pieces["weights"])
    assert all(torch.allclose(a[k], b[k], rtol=0, atol=1e-6) for k in a)
    assert wt.read_meta(whole["weights"])["ema"] == 0.9
    # the installed weights are the average, not the last weights of the run
    state = load_file(str(tmp_path / "runs" / "ema-whole" / "checkpoint.safetensors"))
    assert all(torch.equal(state[f"ema.{k[4:]}"], a[k]) for k in a if k.startswith("net."))
    assert any(not torch.equal(state[k], a[k]) for k in a if k.startswith("net."))
    assert ckpt.read_state(tmp_path / "runs" / "ema-whole" / "checkpoint.safetensors")
    with pytest.raises(CSBenchError, match="ema"):
        TrainConfig(method="ista-net", ratio=0.25, ema=1.0).check()
