"""cs-bench plot (figures of any results CSV) and cs-bench report (results/index.html)."""

import html
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest

from cs_bench import plot, report
from cs_bench.cli import main
from cs_bench.errors import CSBenchError

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def fake_results(n_images=3):
    """A long-format results frame as 'cs-bench run --out' writes it, with one failure."""
    rng = np.random.default_rng(0)
    rows = []
    for method, base, secs in (("fast", 20.0, 0.01), ("slow", 24.0, 1.0), ("bad", 18.0, 0.5)):
        for ratio in (0.1, 0.25):
            for i in range(n_images):
                rows.append({"method": method, "params": "{}", "scope": "block",
                             "dataset": "skimage", "image": f"im{i}", "ratio": ratio,
                             "M": 109, "noise_sigma": 0.0,
                             "psnr": base + 10 * ratio + rng.normal(), "ssim": 0.5,
                             "seconds": secs * (1 + 0.1 * i), "error": None})
    rows.append({**rows[-1], "image": "broken", "psnr": np.nan, "error": "ValueError: x"})
    return pd.DataFrame(rows)


# -- plot ---------------------------------------------------------------------------------
def test_pareto_front():
    pts = pd.DataFrame({"series": list("abcd"), "method": list("abcd"), "ratio": [0.1] * 4,
                        "psnr": [20, 25, 22, 30], "seconds": [0.1, 1.0, 2.0, 5.0]})
    assert list(plot.pareto_front(pts).method) == ["a", "b", "d"]  # c: slower and worse than b


def test_points_count_and_spread():
    pts = plot.points(plot.successful(fake_results()))
    row = pts[(pts.method == "bad") & (pts.ratio == 0.25)].iloc[0]
    assert row.images == 3 and row.psnr_std > 0  # the failed row is left out


def test_plot_command_writes_png_and_svg(tmp_path, capsys):
    csv = tmp_path / "run.csv"
    fake_results().to_csv(csv, index=False)
    old = os.umask(0o027)
    try:
        assert main(["plot", str(csv)]) == 0
    finally:
        os.umask(old)
    printed = capsys.readouterr().out.split()
    assert len(printed) == 6
    for name in plot.FIGURES:
        png, svg = tmp_path / f"run_{name}.png", tmp_path / f"run_{name}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert ElementTree.parse(svg).getroot().tag.endswith("svg")
        assert (png.stat().st_mode & 0o777) == 0o640  # the umask's mode, not mkstemp's 0600
    assert not list(tmp_path.glob(".*"))  # no temporary file left
    # the same figures again: the SVG has no date, so it is byte for byte the same
    before = (tmp_path / "run_psnr_vs_ratio.svg").read_bytes()
    assert main(["plot", str(csv), "--format", "svg", "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "run_psnr_vs_ratio.svg").read_bytes() == before


@pytest.mark.parametrize("content, message", [
    (None, "no results file"),
    ("a,b\n1,2\n", "not a cs-bench results CSV"),
    ("method,ratio,image,psnr,seconds,error\nx,0.1,i,,1,boom\n", "no successful reconstruction"),
    ("method,ratio,image,psnr,seconds\nx,0.1,i,high,1\n", "column psnr holds 'high'"),
])
def test_plot_bad_input_is_one_line(tmp_path, capsys, content, message):
    csv = tmp_path / "r.csv"
    if content is not None:
        csv.write_text(content)
    assert main(["plot", str(csv)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_plot_functions_draw_on_given_axes():
    plt = plot._plt()
    fig, (a, b) = plt.subplots(1, 2)
    df = plot.successful(fake_results())
    assert plot.psnr_vs_ratio(df, ax=a) is fig and plot.psnr_vs_seconds(df, ax=b) is fig
    assert len(a.lines) == 3 and b.get_xscale() == "log"
    plt.close(fig)


# -- report -------------------------------------------------------------------------------
class _Tables(HTMLParser):
    """The tables of a page: {data-source: [table, ...]}, a table a list of rows of texts;
    plus every img src and every external reference."""

    def __init__(self):
        super().__init__()
        self.tables, self.images, self.external = {}, [], []
        self._table = self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = []
            self.tables.setdefault(a.get("data-source", ""), []).append(self._table)
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "img":
            self.images.append(a.get("src", ""))
        for key in ("src", "href"):
            if a.get(key, "").startswith(("http:", "https:", "//", "file:")) and tag != "a":
                self.external.append(a[key])
        if tag in ("link", "iframe"):
            self.external.append(tag)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _plain(cell):
    """A Markdown cell as the page shows it: no backticks, no bold marks."""
    return html.unescape(re.sub(r"\*\*(.+?)\*\*", r"\1", cell).replace("`", "")).strip()


@pytest.fixture(scope="module")
def repo_report(tmp_path_factory):
    if not any(RESULTS.glob("*.md")):
        pytest.skip("no results/*.md in this checkout")
    out = tmp_path_factory.mktemp("report") / "index.html"
    report.write_report(RESULTS, out)
    return out


def test_report_has_every_table_of_every_results_file(repo_report):
    page = _Tables()
    page.feed(repo_report.read_text(encoding="utf-8"))
    mds = [p for p in RESULTS.glob("*.md") if p.name.lower() != "readme.md"]
    assert mds
    for md in mds:
        want = [[[_plain(c) for c in row] for row in t]
                for t in report.markdown_tables(md.read_text(encoding="utf-8"))]
        got = page.tables.get(md.name, [])
        assert got == want, f"{md.name}: its tables are not all on the page"
    # Table 2 keeps the paper's numbers beside ours
    t2 = page.tables["table2.md"][0]
    assert any("(31.53, " in c for row in t2 for c in row)


def test_report_elsewhere_is_self_contained(repo_report):
    page = _Tables()
    page.feed(repo_report.read_text(encoding="utf-8"))
    pngs = list(RESULTS.glob("*.png"))
    assert len([s for s in page.images if s.startswith("data:image/png;base64,")]) == len(pngs)
    assert page.external == []


def test_report_beside_its_figures_links_them(tmp_path):
    """In its results folder the page links each figure once by relative path (the
    repository stores a figure once); --images embed still makes one portable file."""
    res = tmp_path / "res"
    res.mkdir()
    (res / "t.md").write_text("# Mine\n\n| a |\n|--:|\n| 1 |\n")
    fig = fake_results().pipe(plot.successful).pipe(plot.psnr_vs_ratio)
    fig.savefig(res / "f.png")
    fig.savefig(res / "g.png")
    page = _Tables()
    page.feed(report.write_report(res).read_text())
    assert sorted(page.images) == ["f.png", "g.png"] and page.external == []
    assert all((res / s).is_file() for s in page.images)
    page = _Tables()
    page.feed(report.write_report(res, images="embed").read_text())
    assert len(page.images) == 2 and all(s.startswith("data:image/png;base64,")
                                         for s in page.images)
    sub = tmp_path / "site"
    sub.mkdir()
    page = _Tables()
    page.feed(report.write_report(res, sub / "p.html", images="link").read_text())
    assert sorted(page.images) == ["../res/f.png", "../res/g.png"]
    with pytest.raises(CSBenchError, match="valid: auto, embed, link"):
        report.write_report(res, images="png")


def test_report_shows_budgets_and_machine(repo_report):
    text = repo_report.read_text(encoding="utf-8")
    assert 'id="training"' in text and 'id="machine"' in text
    from cs_bench.learned import weights as wt

    for e in wt.available()[:3]:
        assert f"<td>{e.name}</td>" in text
    assert (repo_report.stat().st_mode & 0o777) == 0o666 & ~_umask()


def _umask():
    old = os.umask(0)
    os.umask(old)
    return old


def test_report_command_and_bad_folder(tmp_path, capsys):
    res = tmp_path / "res"
    res.mkdir()
    (res / "t.md").write_text("# Mine\n\n| a | b |\n|--:|:--|\n| 1 | x |\n")
    fake_results().pipe(plot.successful).pipe(plot.psnr_vs_ratio).savefig(res / "f.png")
    assert main(["report", "--results", str(res)]) == 0
    text = (res / "index.html").read_text()
    assert 'data-source="t.md"' in text and text.count('src="f.png"') == 1
    assert main(["report", "--results", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no results folder" in err[-1]


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.mark.skipif(not CHROMIUM, reason="no chromium on this machine (.ci/run installs "
                    "Debian's package)")
@pytest.mark.parametrize("images", ["embed", "link"])
def test_report_renders_every_table_in_chromium(repo_report, tmp_path, images):
    """A real browser lays the page out: the page's script counts the tables with a height
    and the figures it decoded, embedded or linked beside the page."""
    if images == "link":
        res = tmp_path / "results"
        res.mkdir()
        for f in [*RESULTS.glob("*.md"), *RESULTS.glob("*.png")]:
            shutil.copy(f, res / f.name)
        repo_report = report.write_report(res)
    proc = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000",
         "--allow-file-access-from-files", "--dump-dom", repo_report.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    shown = re.search(r'data-tables-shown="(\d+)"', proc.stdout)
    assert shown, "the page's check did not run in the browser"
    page = _Tables()
    page.feed(repo_report.read_text(encoding="utf-8"))
    n = sum(len(t) for t in page.tables.values())
    assert int(shown[1]) == n
    assert int(re.search(r'data-images-shown="(\d+)"', proc.stdout)[1]) == len(page.images)
    assert len(page.images) == len(list(RESULTS.glob("*.png")))
    for md in RESULTS.glob("*.md"):
        if md.name.lower() != "readme.md" and report.markdown_tables(md.read_text()):
            assert f'data-source="{md.name}"' in proc.stdout
