"""``learned.validate``: the validation PSNR of installed weights is the one their training
run recorded for its best epoch."""

import pytest
import torch

from cs_bench.learned import weights as wt
from cs_bench.learned.train import TrainConfig, train
from cs_bench.learned.trainset import Recipe, load
from cs_bench.learned.validate import model_phi, validation_psnr
from cs_bench.sensing import make_phi

RECIPE = Recipe(source="synthetic", n_blocks=128, n_val=32, seed=1)


def test_installed_weights_validate_at_their_recorded_psnr(tmp_path, monkeypatch):
    monkeypatch.setenv("CS_BENCH_WEIGHTS", str(tmp_path / "weights"))
    torch.set_num_threads(1)
    data = load(RECIPE, cache=False)
    cfg = TrainConfig(method="ista-net", ratio=0.25, phases=2, nf=4, epochs=1, batch=32,
                      recipe=RECIPE, name="val-me", out=str(tmp_path / "run"), device="cpu",
                      precision="fp32", checkpoint_every=0)
    res = train(cfg, trainset=data, progress=False, log=lambda *a: None)
    meta = wt.read_meta(res["weights"])
    entry = wt.find("val-me")
    assert (model_phi(entry) == make_phi(0.25, 0)).all()
    assert validation_psnr("val-me", data=data) == pytest.approx(meta["val_psnr"], abs=1e-6)
