"""The weights format: round trip, index, tamper detection, lookup order, errors."""

import json

import pytest
import torch

from cs_bench.errors import WeightsError
from cs_bench.learned import weights as wt
from cs_bench.learned.cli import weights_table


@pytest.fixture(autouse=True)
def _user_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CS_BENCH_WEIGHTS", str(tmp_path / "user"))


def _tensors():
    g = torch.Generator().manual_seed(0)
    return {"net.layers.0.F1": torch.randn(4, 1, 3, 3, generator=g),
            "Qinit": torch.randn(1089, 10, generator=g),
            "Phi": torch.randn(10, 1089, generator=g, dtype=torch.float64)}


META = {"method": "ista-net", "arch": "ista-net", "ratio": 0.01, "M": 10, "phases": 1, "nf": 4,
        "epochs_done": 3, "device": "cpu", "val_psnr": 21.5}


def test_round_trip_keeps_tensors_dtypes_and_metadata(tmp_path):
    t = _tensors()
    path = wt.install(t, META, "tiny")
    assert path == tmp_path / "user" / "tiny.safetensors"
    back = wt.read_tensors(path)
    assert back.keys() == t.keys()
    for k in t:
        assert back[k].dtype == t[k].dtype and torch.equal(back[k], t[k])
    meta = wt.read_meta(path)
    assert {k: meta[k] for k in META} == META
    assert meta["name"] == "tiny" and meta["format"] == wt.FORMAT
    index = json.loads((tmp_path / "user" / "index.json").read_text())["files"]
    assert index["tiny.safetensors"]["sha256"] == wt.sha256(path)
    e = wt.find("tiny")
    assert (e.where, e.indexed, e.short_id) == ("user", True, wt.sha256(path)[:16])
    assert wt.read_metadata("tiny")["val_psnr"] == 21.5


def test_tampered_user_file_is_refused(tmp_path):
    path = wt.install(_tensors(), META, "tiny")
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # flip bits inside a tensor
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        wt.find("tiny")


def test_shipped_files_must_be_indexed_and_match(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    monkeypatch.setattr(wt, "package_dir", lambda: pkg)
    path = wt.install(_tensors(), META, "shipped", folder=pkg)
    assert wt.find("shipped").where == "package"
    (pkg / "index.json").write_text(json.dumps({"files": {}}))
    with pytest.raises(WeightsError, match="not listed"):
        wt.find("shipped")
    wt.register(path, pkg)
    path.write_bytes(path.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        wt.find("shipped")


def test_package_is_searched_before_the_user_folder(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    monkeypatch.setattr(wt, "package_dir", lambda: pkg)
    wt.install(_tensors(), {**META, "val_psnr": 1.0}, "both", folder=pkg)
    # a user file of that name (trained before a release shipped the name)
    user_file = tmp_path / "user" / "both.safetensors"
    wt.save(user_file, _tensors(), {**META, "val_psnr": 2.0})
    wt.register(user_file)
    assert wt.find("both").where == "package"
    assert wt.read_metadata("both")["val_psnr"] == 1.0
    # and a user's training cannot take a shipped name
    with pytest.raises(WeightsError, match="shipped"):
        wt.install(_tensors(), META, "both")


def test_missing_weights_error_names_what_exists_and_how_to_train():
    wt.install(_tensors(), META, "have-this")
    with pytest.raises(WeightsError) as exc:  # a name the package never ships
        wt.find("ista-net_r0.33_np9_nf32", hint=wt.train_hint("ista-net", 0.33))
    msg = str(exc.value)
    assert "\n" not in msg
    assert "ista-net_r0.33_np9_nf32" in msg and "have-this" in msg
    assert "cs-bench train ista-net --ratio 0.33" in msg


def test_damaged_and_foreign_files(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsError, match="not a cs-bench weights file"):
        wt.find("junk").meta()
    rows = {r["name"]: r for r in weights_table()}
    assert rows["junk"]["error"] and "unindexed" in rows["junk"]["where"]
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(2)}, str(user / "foreign.safetensors"))
    with pytest.raises(WeightsError, match="not a cs-bench weights file"):
        wt.read_meta(user / "foreign.safetensors")
    with pytest.raises(WeightsError, match="not a valid weights name"):
        wt.find("bad name")
    with pytest.raises(WeightsError, match="does not exist"):
        wt.find("../elsewhere/x.safetensors")
    wt.install(_tensors(), META, "gone")
    (user / "gone.safetensors").unlink()
    with pytest.raises(WeightsError, match="missing"):
        wt.find("gone")


def test_weights_by_path_and_default_names(tmp_path):
    path = wt.install(_tensors(), META, "bypath")
    assert wt.find(str(path)).where == "path"
    assert wt.default_name("ista-net", 0.4) == "ista-net_r0.4_np9_nf32"
    assert wt.default_name("fista-net-star", 0.25, 11, 16) == "fista-net-star_r0.25_np11_nf16"
    assert wt.default_name("reconnet-enhanced", 0.1) == "reconnet-enhanced_r0.1"
    from cs_bench.paper.zoo import ZooEntry

    for e in (ZooEntry("ista-net", 0.25, 1), ZooEntry("sda", 0.1, 1)):
        assert wt.default_name(e.method, e.ratio, e.phases, e.nf) == e.name


def test_concurrent_registers_lose_no_entry(tmp_path):
    """Two trainers finishing at once both end up in the folder's index."""
    import multiprocessing as mp

    names = [f"m{i}" for i in range(8)]
    for n in names:
        (tmp_path / f"{n}.safetensors").write_bytes(n.encode())
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=wt.register, args=(tmp_path / f"{n}.safetensors", tmp_path))
             for n in names]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert sorted(wt.read_index(tmp_path)) == sorted(f"{n}.safetensors" for n in names)
