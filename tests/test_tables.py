import pytest
import pandas as pd

from cs_bench.paper import tables
from cs_bench.paper.tables import Cell


def test_cells_cover_every_paper_number():
    from cs_bench.paper import published as paper

    all_cells = tables.cells()
    matrix = [c for c in all_cells if c.table == "ratio_matrix"]
    release = [c for c in all_cells if c.params.get("weights", "").startswith("release-")
               and c.table != "ratio_matrix"]
    cells = [c for c in all_cells if c not in release and c not in matrix]
    assert len(matrix) == 7 * 7 + 5 * 7  # ours at 0.1-0.6; the release at 0.1, 0.25-0.5
    n_paper = sum(len(v) for v in paper.TABLE1.values()) + 2 * len(paper.TABLE2) + \
        sum(len(v) for v in paper.TABLE3.values()) + sum(len(v) for v in paper.TABLE4.values())
    assert sum(1 for c in cells if c.paper == c.paper) == n_paper  # every published value
    learned = [c for c in cells if "weights" in c.params]
    from cs_bench.paper.zoo import entry

    for c in learned:
        entry(c.params["weights"])  # every learned cell names a zoo model
    # the release: Table 2 at 0.25 and 0.1, Table 4 at 0.3-0.5 for ISTA-Net and ISTA-Net+,
    # the ISTA-Net0.4 twin at 0.2-0.6; results/release.md every ratio, own Phi but at 50 %
    t2 = [c for c in release if c.table == "table2"]
    assert len(t2) == 4 and all(c.phi for c in t2)
    t4 = [c for c in release if c.table == "table4"]
    assert len(t4) == 2 * 3 + 5
    assert sorted(c.phi != "" for c in t4).count(True) == 4  # 0.3, 0.4 of each; 0.5 harness Phi
    assert len([c for c in release if c.table == "release"]) == 2 * (6 + 7)
    assert all(c.paper == c.paper for c in release)


def test_small_tables_end_to_end(tmp_path, monkeypatch):
    small = [
        Cell("table2", "TVAL3", "0.25", "min-norm", 0.25, 27.84),
        Cell("table2", "TVAL3", "0.1", "min-norm", 0.10, 22.84),
        Cell("table4", "ISTA-Net", "0.2", "ista-net", 0.2, 30.06,
             {"weights": "ista-net_r0.2_np9_nf32"}),
    ]
    monkeypatch.setattr(tables.paper, "TABLE2", {"TVAL3": tables.paper.TABLE2["TVAL3"]})
    monkeypatch.setattr(tables, "EXTRA", {})
    monkeypatch.setattr(tables, "_weights_budget", lambda name: None)  # nothing trained
    monkeypatch.setattr(tables, "cells", lambda: small)
    df = tables.make_tables(tmp_path, dataset="skimage", figures=False, progress=False)
    t2 = pd.read_csv(tmp_path / "table2.csv")
    assert len(t2) == 2 and t2.psnr.notna().all()
    assert (t2["diff"] - (t2.psnr - t2.paper_psnr)).abs().max() < 1e-3
    t4 = (tmp_path / "table4.md").read_text()
    assert "not trained (paper 30.06)" in t4
    assert df.loc[df.table == "table4", "note"].item() == "not trained"
    md2 = (tmp_path / "table2.md").read_text()
    assert "35.8 (CPU)" in md2
    ssim2 = (tmp_path / "table2_ssim.md").read_text()  # the SSIM companions
    assert f"{t2.ssim.iloc[0]:.4f}" in ssim2 and "paper" in ssim2
    assert "not trained" in (tmp_path / "table4_ssim.md").read_text()


def test_only_writes_the_selected_tables(tmp_path, monkeypatch):
    small = [
        Cell("table2", "TVAL3", "0.25", "min-norm", 0.25, 27.84),
        Cell("table2", "TVAL3", "0.1", "min-norm", 0.10, 22.84),
        Cell("table4", "TVAL3", "0.2", "min-norm", 0.2, 25.37),
    ]
    monkeypatch.setattr(tables.paper, "TABLE2", {"TVAL3": tables.paper.TABLE2["TVAL3"]})
    monkeypatch.setattr(tables, "EXTRA", {})
    monkeypatch.setattr(tables, "cells", lambda: small)
    df = tables.make_tables(tmp_path, dataset="skimage", figures=False, progress=False,
                            only=["table4"])
    assert set(df.table) == {"table4"} and df.psnr.notna().all()
    assert (tmp_path / "table4.md").is_file() and not (tmp_path / "table2.md").exists()


def test_only_a_part_without_cells_writes_no_table(tmp_path, monkeypatch):
    """``--only phases`` selects no table cell: the empty cell table keeps its columns, so
    nothing downstream fails on it, and no table or runs-only figure is written."""
    monkeypatch.setattr(tables, "cells", lambda: [Cell("table2", "TVAL3", "0.25", "min-norm",
                                                       0.25, 27.84)])
    df = tables.make_tables(tmp_path, dataset="skimage", figures=True, progress=False,
                            only=["phases"])
    assert df.empty and list(df.columns) == list(tables.CELL_COLUMNS)
    assert not any(tmp_path.glob("table*")) and not (tmp_path / "psnr_vs_ratio.png").exists()


def test_readme_gets_table2_between_its_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{tables.README_START}\nold\n{tables.README_END}\nb\n")
    assert tables.update_readme("# Table 2: t\n\nnote\n\n| x |\n|---|\n| 1 |\n", readme)
    text = readme.read_text()
    assert "old" not in text and "| 1 |" in text and text.startswith("a\n") and text.endswith("b\n")
    assert not tables.update_readme("x", tmp_path / "missing.md")


def test_zoo_lock_keeps_a_second_trainer_out(tmp_path):
    import subprocess
    import sys

    from cs_bench.paper import zoo

    run = str(tmp_path / "run")
    assert zoo._lock(run) and zoo._lock(run)  # ours: taken again
    zoo._unlock(run)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / "run" / ".lock").write_text(str(other.pid))
        assert not zoo._lock(run)  # a live process holds it
    finally:
        other.kill()
        other.wait()
    assert zoo._lock(run)  # its process is gone: stale, taken over
    (tmp_path / "run" / ".lock").write_text("")
    assert zoo._lock(run)  # an empty lock is stale too


def test_budget_text_names_each_models_budget_in_a_mixed_row():
    def row(column, epochs, hours, init=""):
        return {"column": column, "epochs": epochs, "train_device": "CPU", "train_hours": hours,
                "init_from": init}

    one = pd.DataFrame([row("0.25", 3, 1.8)] * 3)
    assert tables._budget_text(one) == "3 ep, CPU, 1.8 h"
    mixed = pd.DataFrame([row("0.25", 3, 1.8), row("0.25", 3, 1.8), row("0.1", 1, 0.6, "a"),
                          row("0.4", 0, 0.0, "a")])
    text = tables._budget_text(mixed)
    assert text == ("0.25: 3 ep, CPU, 1.8 h; 0.1: 1 ep, CPU, 0.6 h, warm start a; "
                    "0.4: no training: a as is (Qinit solved for the ratio)")
    assert tables._budget_text(pd.DataFrame([row("0.1", None, None)])) == ""


def test_partial_run_keeps_the_other_tables_runs(tmp_path):
    def run(method, ratio, psnr):
        return {"method": method, "params": "{}", "dataset": "set11", "image": "a",
                "ratio": ratio, "noise_sigma": 0, "psnr": psnr}

    path = tmp_path / "all_runs.csv"
    pd.DataFrame([run("tval3", 0.25, 27.0), run("d-amp", 0.2, 30.0)]).to_csv(path, index=False)
    merged = tables._merge_runs(path, pd.DataFrame([run("d-amp", 0.2, 31.0), run("d-amp", 0.3, 32.0)]))
    got = {(r.method, r.ratio): r.psnr for r in merged.itertuples()}
    assert got == {("tval3", 0.25): 27.0, ("d-amp", 0.2): 31.0, ("d-amp", 0.3): 32.0}
    assert tables._merge_runs(tmp_path / "none.csv", merged) is merged


def _min_norm_table2(monkeypatch):
    """Table 2 reduced to one row (TVAL3's paper values) computed by the fast min-norm."""
    small = [Cell("table2", "TVAL3", "0.25", "min-norm", 0.25, 27.84),
             Cell("table2", "TVAL3", "0.1", "min-norm", 0.10, 22.84)]
    monkeypatch.setattr(tables.paper, "TABLE2", {"TVAL3": tables.paper.TABLE2["TVAL3"]})
    monkeypatch.setattr(tables, "EXTRA", {})
    monkeypatch.setattr(tables, "cells", lambda: small)


def test_cached_only_shows_not_run(tmp_path, monkeypatch):
    _min_norm_table2(monkeypatch)
    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path / "empty-cache"))
    tables.make_tables(tmp_path, dataset="skimage", figures=False, progress=False,
                       only=["table2"], cached_only=["min-norm"])
    t2 = pd.read_csv(tmp_path / "table2.csv")
    assert set(t2.note) == {"not run"} and t2.psnr.isna().all()
    assert "not run (paper 27.84)" in (tmp_path / "table2.md").read_text()
    import pytest

    from cs_bench.errors import CSBenchError

    with pytest.raises(CSBenchError, match="unknown method"):
        tables.make_tables(tmp_path, dataset="skimage", figures=False, progress=False,
                           cached_only=["d-ampp"])


def test_reuse_takes_same_code_rows_from_all_runs_and_computes_the_rest(tmp_path, monkeypatch):
    _min_norm_table2(monkeypatch)
    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path / "cache-a"))
    kw = dict(dataset="skimage", figures=False, progress=False, only=["table2"])
    tables.make_tables(tmp_path, **kw)
    runs = pd.read_csv(tmp_path / "all_runs.csv", dtype={"code": str})
    assert runs.code.notna().all() and runs.code.nunique() == 1
    true = runs.psnr.copy()
    # mark one row (to see it reused) and give another a stale code (must be recomputed)
    runs.loc[0, "psnr"] = 99.0
    runs.loc[1, "code"] = "0123456789abcdef"
    runs.loc[1, "psnr"] = 98.0
    runs.to_csv(tmp_path / "all_runs.csv", index=False)
    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path / "cache-b"))  # a cold cache
    tables.make_tables(tmp_path, reuse=["min-norm"], **kw)
    again = pd.read_csv(tmp_path / "all_runs.csv")
    key = ["image", "ratio"]
    got = again.set_index(key).psnr
    assert got[tuple(runs.loc[0, key])] == 99.0  # same code: taken as it was
    assert abs(got[tuple(runs.loc[1, key])] - true[1]) < 1e-4  # stale code: computed again
    assert len(again) == len(runs) and again.error.isna().all()
    assert "reused" not in again.columns
    assert "min-norm: per-image rows (PSNR and seconds) taken from an earlier" in \
        (tmp_path / "table2.md").read_text()


def test_tier2_cpu_models_are_carried_from_the_tier1_network_and_wait_for_it(monkeypatch):
    from cs_bench.paper import zoo

    t2 = [e for e in zoo.ZOO if e.tier == 2]
    assert len(t2) == 24 and len({e.name for e in t2}) == 24
    assert {zoo.init_for(e, "cpu") for e in t2} == {zoo.TIER2_BASE}
    assert {zoo.init_for(e, "paper") for e in t2} == {""}  # the paper: from scratch
    assert zoo.epochs_for(t2[0], "cpu") == 1 and zoo.TIER2_CPU_BLOCKS < 88_912
    said = []
    monkeypatch.setattr(zoo, "shipped", lambda name: None)  # nothing trained, not the base
    assert zoo.train_zoo(tier=2, only=[t2[0].name], log=said.append) == 0
    assert said == [f"{t2[0].name}: waits for {zoo.TIER2_BASE} (its warm start); skipped"]


def test_figure_6_numbers_get_their_own_tables(tmp_path, monkeypatch):
    small = [Cell("fig6b", "ISTA-Net", f"Nf={nf}", "ista-net", 0.25, float("nan"),
                  {"weights": f"ista-net_r0.25_np9_nf{nf}_t2"}) for nf in (8, 16)]
    monkeypatch.setattr(tables, "_weights_budget", lambda name: None)  # nothing trained
    monkeypatch.setattr(tables, "cells", lambda: small)
    tables.make_tables(tmp_path, dataset="skimage", figures=False, progress=False)
    md = (tmp_path / "fig6b.md").read_text()
    assert md.startswith("# Fig. 6b") and md.count("not trained") == 2 and "(paper" not in md
    assert len(pd.read_csv(tmp_path / "fig6b.csv")) == 2


def test_table4_remark_says_which_ratios_are_fine_tuned_from_the_shared_start():
    base = "ista-net_r0.25_np9_nf32"
    ista = pd.DataFrame({"column": ["0.2", "0.3", "0.4"], "epochs": [0.0, 1.0, 1.0],
                         "init_from": [base] * 3})
    text = tables._ista_ratio_remark(ista)
    assert base in text and "0.2 as is" in text and "0.3, 0.4 fine-tuned" in text
    assert "coincide" in tables._ista_ratio_remark(ista.assign(epochs=0.0))
    assert tables._ista_ratio_remark(ista.assign(init_from=[base, None, base])) == ""
    # 0.5 and 0.6 grow from the 0.4 model, itself grown from 0.25
    four = "ista-net_r0.4_np9_nf32"
    chain = pd.DataFrame({"column": ["0.2", "0.4", "0.5", "0.6"], "epochs": [8.0, 32.0, 8.0, 0.0],
                          "init_from": [base, base, four, four]})
    text = tables._ista_ratio_remark(chain)
    assert f"{base} (0.2, 0.4), {four} (0.5, 0.6)" in text
    assert "0.6 as is" in text and "0.2, 0.4, 0.5 fine-tuned" in text


def test_ratio_matrix_is_relative_to_the_model_trained_at_the_run_ratio(tmp_path):
    rows = []
    for a in (0.1, 0.25):
        for b in (0.1, 0.25):
            rows.append({"table": "ratio_matrix", "row": f"ours, trained at {a:g}",
                         "column": f"{b:g}", "ratio": b, "psnr": 20 + 10 * b - abs(a - b),
                         "note": ""})
    df = pd.DataFrame(rows)
    md = tables.ratio_matrix_markdown(df)
    assert "22.35 (-0.15)" in md and "| 22.50 " in md  # 0.1 -> 0.25 vs the 0.25 model
    tables.ratio_matrix_figure(df, tmp_path)
    assert (tmp_path / "ratio_matrix.png").stat().st_size > 1000


def test_continued_model_states_its_whole_budget(monkeypatch, tmp_path):
    """A continuation's budget cell adds the budgets of the versions it continues, and
    names the first version's start, not the continuation's own config."""
    from cs_bench.learned import weights

    first = {"epochs_done": 43, "epoch_blocks": 12800, "training_blocks": 88912,
             "wall_seconds": 7200.0, "init": "identity", "earlier": None}
    meta = {"name": "ista-net_r0.25_np9_nf32", "device": "cpu", "threads": 1,
            "epochs_done": 26, "epoch_blocks": 12800, "training_blocks": 88912,
            "wall_seconds": 3600.0, "init": "xavier", "val_psnr": 26.4,
            "init_from": {"name": "ista-net_r0.25_np9_nf32", "sha256": "old"},
            "earlier": first}
    monkeypatch.setattr(weights, "read_metadata", lambda name: meta)
    monkeypatch.setattr(tables, "_warm_start_text", lambda record: record["name"])
    b = tables._weights_budget("ista-net_r0.25_np9_nf32")
    assert b["epochs"] == pytest.approx(26 * 12800 / 88912)
    assert b["start"] == "identity start"
    assert b["init_from"] == ("continuing its own earlier version "
                              f"({69 * 12800 / 88912:.2f} ep, 3.0 h in all)")
    meta["earlier"] = None
    monkeypatch.chdir(tmp_path)  # no run logs here
    assert "does not record" in tables._weights_budget("ista-net_r0.25_np9_nf32")["init_from"]
    # weights continued before their metadata kept the earlier budget: the first run's log
    run = tmp_path / "zoo_runs" / "ista-net_r0.25_np9_nf32"
    run.mkdir(parents=True)
    (run / "log.csv").write_text("epoch,steps,val_psnr,seconds\n0,0,20.0,0\n1,200,25.0,1800\n"
                                 "2,400,26.0,1800\n3,600,25.9,1800\n")
    b = tables._weights_budget("ista-net_r0.25_np9_nf32")
    assert b["start"] is None  # the log does not say how the first run started
    assert b["init_from"] == ("continuing its own earlier version "
                              f"({(26 * 12800 + 400 * 64) / 88912:.2f} ep, 2.0 h in all; the "
                              "earlier version's from its run's log)")
