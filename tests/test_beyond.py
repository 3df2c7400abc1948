"""Beyond the paper (results/noise.*, results/datasets.*) at a tiny size: the cheap min-norm,
two small images, D-AMP as the slow solver that is never computed unless asked."""

import re

import numpy as np
import pandas as pd
import pytest

from cs_bench.paper import datasets, noise
from cs_bench.paper.datasets import ImageSet

ROWS = [("min-norm", "min-norm", "classical"), ("D-AMP", "d-amp", "classical")]


@pytest.fixture
def folder(tmp_path):
    """Two small images in a folder (a dataset given as a path)."""
    from PIL import Image

    d = tmp_path / "imgs"
    d.mkdir()
    rng = np.random.default_rng(0)
    for name, shape in (("a", (40, 50)), ("b", (33, 33))):
        Image.fromarray((rng.random(shape) * 255).astype(np.uint8)).save(d / f"{name}.png")
    return str(d)


def _png(path):
    assert path.is_file() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _table(md, first_cell):
    """The Markdown table whose header starts with ``first_cell``: header and rows."""
    lines = md.splitlines()
    i = next(i for i, ln in enumerate(lines) if re.match(rf"\|\s*{first_cell}\s*\|", ln))
    rows = []
    for ln in lines[i:]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip("|").split("|")])
    return rows[0], rows[2:]


def test_noise_table_csv_and_figure(tmp_path, folder):
    out = tmp_path / "out"
    out.mkdir()
    df = noise.make_noise(out, folder, rows=ROWS, sigmas=(0, 0.01, 0.05), progress=False)
    assert len(df) == 2 * 3  # methods x sigmas
    mn = df[df.row == "min-norm"]
    assert mn.psnr.notna().all() and (mn.n_images == 2).all()
    assert set(df[df.row == "D-AMP"].note) == {"not run"}  # slow: never computed by default
    head, body = _table((out / "noise.md").read_text(), "method")
    assert head[:4] == ["method", "σ = 0", "σ = 0.01", "σ = 0.05"] and len(body) == 2
    assert body[1][1] == "not run" and "make beyond-slow" in (out / "noise.md").read_text()
    csv = pd.read_csv(out / "noise.csv")
    assert (csv.image == "mean").sum() == 6 and (csv.image != "mean").sum() == 2 * 3
    assert csv[csv.image != "mean"].code.notna().all()
    _png(out / "noise.png")


def test_noise_rerun_takes_same_code_rows_from_its_csv(tmp_path, folder, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    kw = dict(rows=ROWS[:1], sigmas=(0, 0.02), progress=False, figures=False)
    noise.make_noise(out, folder, **kw)
    csv = pd.read_csv(out / "noise.csv", dtype={"code": str})
    marked = (csv.image == "a") & (csv.noise_sigma == 0.02)
    csv.loc[marked, "psnr"] = 99.0  # to see it taken
    csv.to_csv(out / "noise.csv", index=False)
    monkeypatch.setenv("CS_BENCH_CACHE", str(tmp_path / "cold"))  # a cold run cache
    df = noise.make_noise(out, folder, **kw)
    again = pd.read_csv(out / "noise.csv")
    assert again.loc[(again.image == "a") & (again.noise_sigma == 0.02), "psnr"].item() == 99.0
    assert (df.n_images == 2).all()


def test_datasets_table_shape_subset_and_figure(tmp_path, folder):
    out = tmp_path / "out"
    out.mkdir()
    sets = (ImageSet("Both", folder), ImageSet("Whole", folder, slow=False),
            ImageSet("First one", folder, first=1))
    df = datasets.make_datasets(out, rows=ROWS, sets=sets, ratios=(0.1, 0.25), progress=False)
    assert len(df) == 2 * 3 * 2  # methods x sets x ratios
    mn = df[df.row == "min-norm"].set_index(["set", "ratio"])
    assert (mn.n_images.xs("First one") == 1).all() and (mn.n_images.xs("Both") == 2).all()
    assert mn.psnr.notna().all() and mn.ssim.notna().all()
    damp = df[df.row == "D-AMP"].set_index("set").note
    assert set(damp["Whole"]) == {"see First one"} and set(damp["Both"]) == {"not run"}
    md = (out / "datasets.md").read_text()
    assert md.count("## Ratio") == 2
    head, body = _table(md, "method")
    assert head[:4] == ["method", "Both", "Whole", "First one"] and len(body) == 2
    assert re.fullmatch(r"\d+\.\d\d / \d\.\d{4}", body[0][1])  # PSNR / SSIM
    assert "Does the ranking hold?" in md
    csv = pd.read_csv(out / "datasets.csv")
    per = csv[csv.image != "mean"]
    assert (csv.image == "mean").sum() == 12 and len(per) == 2 * 2  # each result once
    assert set(per.image) == {"a", "b"} and per.psnr.notna().all()
    _png(out / "datasets.png")


def test_ranking_agreement():
    df = pd.DataFrame({"row": list("abcabc"), "set": ["S"] * 3 + ["T"] * 3, "ratio": 0.25,
                       "psnr": [30, 20, 25, 29, 21, 24]})
    r = datasets.ranking(df)
    assert len(r) == 1 and r["Spearman rho with S"].item() == "1.00"
    assert r["best here"].item() == "a"


def test_only_the_beyond_parts_leave_the_paper_tables_alone(tmp_path, folder, monkeypatch):
    from cs_bench.paper import build

    monkeypatch.setattr(noise, "table2_rows", lambda: ROWS[:1])
    assert build.make_tables(tmp_path, dataset=folder, figures=False, progress=False,
                             only=["noise"]) is None
    assert (tmp_path / "noise.md").is_file()
    assert not (tmp_path / "all_runs.csv").exists() and not (tmp_path / "table2.md").exists()


def test_tables_command_passes_compute_slow(tmp_path, monkeypatch):
    from cs_bench.cli import main
    from cs_bench.paper import build

    got = {}
    monkeypatch.setattr(build, "make_tables", lambda *a, **k: got.update(k))
    assert main(["tables", "--only", "noise,datasets", "--compute-slow",
                 "--out", str(tmp_path)]) == 0
    assert got["compute_slow"] is True and got["only"] == ["noise", "datasets"]
