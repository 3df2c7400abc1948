"""One self-contained HTML page of the results: ``cs-bench report`` -> ``results/index.html``.

The page holds every table of ``results/*.md`` (their cells already show ours, the paper's
value and the difference), every figure ``results/*.png``, the training budget of every
weights file (from the weights' metadata, as ``cs-bench weights list`` reads it) and the
machine it was made on. No network, no external style sheet or script.

Figures are linked by relative path when the page sits beside them (``results/index.html``:
the repository then stores each figure once, not again as base64 in the page) and embedded
as base64 when the page goes elsewhere, so that a page written with ``--out`` is one file
that opens anywhere; ``images="embed"`` / ``"link"`` choose explicitly.

>>> html = markdown_to_html("# T\\n\\nSome `code`.\\n\\n| a | b |\\n|:--|--:|\\n| 1 | 2 |\\n")
>>> "<h1>T</h1>" in html, "<code>code</code>" in html, '<td style="text-align:right">2</td>' in html
(True, True, True)
"""

import base64
import html as _html
import os
import re
from pathlib import Path

from .errors import CSBenchError
from .files import atomic_write_text

#: Order of the known files; any other ``*.md`` / ``*.png`` follows by name.
ORDER = ["table2", "table4", "table1", "table3", "fig6a", "fig6b", "bench", "damp_set11",
         "wavelet_set11", "psnr_vs_ratio", "fig5_visual", "fig6a_symmetric", "fig6b_nf"]

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1200px;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{font-size:1.3em;border-bottom:1px solid #ccc;margin-top:2em}
h3{font-size:1.1em}
table{border-collapse:collapse;margin:.8em 0;font-size:.85em;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.25em .5em;vertical-align:top}
th{background:#f2f2f2}tr:nth-child(even) td{background:#fafafa}
code{background:#f4f4f4;padding:0 .2em;border-radius:3px}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555}
nav ul{columns:3;font-size:.9em}.source{font-size:.8em;color:#777}
"""

# A check the browser test reads back: how many tables the browser laid out with a height,
# and how many figures it decoded.
_SCRIPT = """
addEventListener("load",function(){var t=document.querySelectorAll("table"),n=0;
for(var i=0;i<t.length;i++){if(t[i].getBoundingClientRect().height>0)n++;}
document.body.setAttribute("data-tables-shown",n);
var g=document.querySelectorAll("img"),k=0;
for(var j=0;j<g.length;j++){if(g[j].complete&&g[j].naturalWidth>0)k++;}
document.body.setAttribute("data-images-shown",k);});
"""


# -- Markdown (the subset the result files use) --------------------------------------------
def _inline(text):
    """Escape ``text`` and render `code`, **bold**, [links](url) and bare images."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) >= 2:
            out.append(f"<code>{_html.escape(part[1:-1])}</code>")
            continue
        s = _html.escape(part, quote=False)
        s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
        s = re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)", r"[figure: \1]", s)
        s = re.sub(r"\[([^\]]+)\]\((https?://[^)\s]+)\)",
                   lambda m: f'<a href="{_html.escape(m[2])}">{m[1]}</a>', s)
        out.append(s)
    return "".join(out)


def _cells(line):
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [c.strip() for c in re.split(r"(?<!\\)\|", line)]


def _table(lines, source=""):
    head = _cells(lines[0])
    aligns = []
    for spec in _cells(lines[1]) if len(lines) > 1 else []:
        right, left = spec.endswith(":"), spec.startswith(":")
        aligns.append("center" if left and right else "right" if right else "left" if left else "")
    body = lines[2:] if len(lines) > 1 and re.fullmatch(r"[\s|:\-]+", lines[1]) else lines[1:]

    def cell(tag, text, i):
        a = aligns[i] if i < len(aligns) else ""
        style = f' style="text-align:{a}"' if a and a != "left" else ""
        return f"<{tag}{style}>{_inline(text)}</{tag}>"

    src = f' data-source="{_html.escape(source)}"' if source else ""
    rows = ["<tr>" + "".join(cell("th", c, i) for i, c in enumerate(head)) + "</tr>"]
    rows += ["<tr>" + "".join(cell("td", c, i) for i, c in enumerate(_cells(r))) + "</tr>"
             for r in body]
    return (f"<table{src}>\n<thead>{rows[0]}</thead>\n<tbody>\n" + "\n".join(rows[1:])
            + "\n</tbody>\n</table>")


def markdown_to_html(text, source="", heading_shift=0):
    """The HTML of a Markdown text made of headings, paragraphs, lists and pipe tables."""
    lines = text.replace("\r\n", "\n").split("\n")
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.strip().startswith("<!--"):
            i += 1
        elif m := re.match(r"(#{1,6})\s+(.*)", line):
            level = min(6, len(m[1]) + heading_shift)
            out.append(f"<h{level}>{_inline(m[2].strip())}</h{level}>")
            i += 1
        elif line.lstrip().startswith("|"):
            j = i
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                j += 1
            out.append(_table(lines[i:j], source))
            i = j
        elif re.match(r"\s*[-*]\s+", line):
            items = []
            while i < len(lines) and lines[i].strip():
                if re.match(r"\s*[-*]\s+", lines[i]):
                    items.append(re.sub(r"^\s*[-*]\s+", "", lines[i]))
                else:
                    items[-1] += " " + lines[i].strip()
                i += 1
            out.append("<ul>" + "".join(f"<li>{_inline(t)}</li>" for t in items) + "</ul>")
        elif line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append(f"<pre><code>{_html.escape(chr(10).join(lines[i + 1:j]))}</code></pre>")
            i = j + 1
        else:
            para = []
            while (i < len(lines) and lines[i].strip() and not lines[i].lstrip().startswith("|")
                   and not re.match(r"#{1,6}\s|\s*[-*]\s+|```", lines[i])):
                para.append(lines[i].strip())
                i += 1
            out.append(f"<p>{_inline(' '.join(para))}</p>")
    return "\n".join(out)


def markdown_tables(text):
    """The pipe tables of a Markdown text, each as a list of rows of cell texts (the header
    row first, the alignment row left out)."""
    tables, cur = [], []
    for line in text.split("\n") + [""]:
        if line.lstrip().startswith("|"):
            cur.append(line)
        elif cur:
            rows = [_cells(r) for r in cur if not re.fullmatch(r"[\s|:\-]+", r)]
            tables.append(rows)
            cur = []
    return tables


# -- the page's parts ----------------------------------------------------------------------
def _sort_key(path):
    stem = path.stem
    return (ORDER.index(stem) if stem in ORDER else len(ORDER), stem)


def _image(path, alt, link_from=None):
    """An ``<img>`` of ``path``: a relative link from the folder ``link_from``, or the file
    embedded as base64 when ``link_from`` is None."""
    if link_from is not None:
        src = Path(os.path.relpath(Path(path).resolve(), Path(link_from).resolve())).as_posix()
        return f'<img alt="{_html.escape(alt)}" src="{_html.escape(src)}">'
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    mime = "image/svg+xml" if path.suffix == ".svg" else "image/png"
    return f'<img alt="{_html.escape(alt)}" src="data:{mime};base64,{data}">'


def training_budgets():
    """One row per weights file: name, method, ratio, Np, Nf, epochs, device, hours, T91
    validation PSNR, warm start and where it lies. Empty when the learned part is missing."""
    try:
        from .learned import weights as wt
    except ImportError:
        return []
    rows = []
    for e in wt.available():
        try:
            m = e.meta()
        except CSBenchError as exc:
            rows.append({"name": e.name, "error": str(exc)})
            continue
        wall = m.get("wall_seconds") or m.get("seconds")
        epochs = m.get("epochs_done", m.get("epochs"))
        if epochs is not None and m.get("epoch_blocks") and m.get("training_blocks"):
            epochs = round(epochs * m["epoch_blocks"] / m["training_blocks"], 2)  # short epochs
        init = m.get("init_from") or ""
        rows.append({
            "name": e.name, "method": m.get("method"), "ratio": m.get("ratio"),
            "Np": m.get("phases"), "Nf": m.get("nf"), "epochs": epochs,
            "device": m.get("device"), "profile": m.get("profile"),
            "hours": round(wall / 3600, 2) if wall else None,
            "val PSNR": round(m["val_psnr"], 2) if m.get("val_psnr") is not None else None,
            "warm start": init.get("name", "") if isinstance(init, dict) else str(init),
            "where": e.where,
        })
    return rows


def machine():
    """What made the page: CPU, cores, Python and the main libraries' versions."""
    import platform

    from .runner import cpu_name

    info = {"CPU": cpu_name(), "cores": os.cpu_count(), "machine": platform.machine(),
            "system": f"{platform.system()} {platform.release()}",
            "Python": platform.python_version()}
    from importlib import metadata

    for pkg in ("cs-bench", "numpy", "scipy", "scikit-image", "torch", "joblib", "pandas"):
        try:
            info[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    try:
        import torch

        info["GPU"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except ImportError:
        pass
    return info


def _rows_table(rows, cols):
    head = "".join(f"<th>{_html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(
        f"<td>{_html.escape('' if r.get(c) is None else str(r.get(c)))}</td>" for c in cols)
        + "</tr>\n" for r in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>"


def build_html(results_dir, title="cs-bench results", link_from=None):
    """The page for the folder ``results_dir`` (its ``*.md`` and ``*.png``), as a string;
    figures are linked relative to the folder ``link_from``, or embedded when it is None."""
    results_dir = Path(results_dir)
    mds = sorted((p for p in results_dir.glob("*.md") if p.name.lower() != "readme.md"),
                 key=_sort_key)
    pngs = sorted(results_dir.glob("*.png"), key=_sort_key)
    sections, nav = [], []
    for md in mds:
        anchor = f"t-{md.stem}"
        body = markdown_to_html(md.read_text(encoding="utf-8"), source=md.name, heading_shift=1)
        if "<h2>" not in body[:200]:
            body = f"<h2>{_html.escape(md.stem)}</h2>\n" + body
        first = re.search(r"<h2>(.*?)</h2>", body)
        nav.append((anchor, re.sub("<[^>]+>", "", first[1]) if first else md.stem))
        sections.append(f'<section id="{anchor}">\n{body}\n<p class="source">from '
                        f'results/{_html.escape(md.name)}</p>\n</section>')
    figs = []
    for png in pngs:
        figs.append(f'<figure id="f-{png.stem}">{_image(png, png.stem, link_from)}<figcaption>'
                    f'results/{_html.escape(png.name)}</figcaption></figure>')
    if figs:
        nav.append(("figures", "Figures"))
        sections.append('<section id="figures">\n<h2>Figures</h2>\n' + "\n".join(figs)
                        + "\n</section>")
    budgets = training_budgets()
    cols = ["name", "method", "ratio", "Np", "Nf", "epochs", "device", "profile", "hours",
            "val PSNR",
            "warm start", "where"]
    if any("error" in r for r in budgets):
        cols.append("error")
    nav.append(("training", "Training budgets"))
    sections.append(
        '<section id="training">\n<h2>Training budgets</h2>\n<p>Every weights file the '
        "learned methods can load (shipped in the package, then the user folder), from its "
        "metadata: epochs, device, wall time, validation PSNR on held-out T91 blocks, and the "
        "network it started from. The paper trained every network for 300 epochs on a GPU.</p>\n"
        + (_rows_table(budgets, cols) if budgets else "<p>No weights found (the learned part "
           "of cs-bench is not installed, or nothing is trained yet).</p>") + "\n</section>")
    info = machine()
    nav.append(("machine", "Machine"))
    sections.append('<section id="machine">\n<h2>Machine</h2>\n<p>Where this page was made; '
                    "every table says where its own numbers come from.</p>\n"
                    + _rows_table([{"what": k, "value": v} for k, v in info.items()],
                                  ["what", "value"]) + "\n</section>")
    titles = [t for _, t in nav]
    nav = [(a, f"{t} ({a[2:]})" if titles.count(t) > 1 else t) for a, t in nav]
    toc = "<nav><ul>" + "".join(f'<li><a href="#{a}">{_html.escape(t)}</a></li>'
                                for a, t in nav) + "</ul></nav>"
    intro = ("<p>Every table of <code>results/</code>. Cells read <em>ours (paper, "
             "difference)</em>: our PSNR in dB, the ISTA-Net / FISTA-Net paper's value and ours "
             "minus the paper's; rows without a paper value are our references. Learned rows "
             "carry their training budget.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_html.escape(title)}</title>\n<style>{_STYLE}</style>\n"
            f"<script>{_SCRIPT}</script>\n</head>\n<body>\n<h1>{_html.escape(title)}</h1>\n"
            f"{intro}\n{toc}\n" + "\n".join(sections) + "\n</body>\n</html>\n")


IMAGES = ("auto", "embed", "link")


def write_report(results_dir="results", out=None, title="cs-bench results", images="auto"):
    """Write the page for ``results_dir`` to ``out`` (default ``results_dir/index.html``)
    atomically, with the umask's mode; the path. ``images``: ``"link"`` (relative paths),
    ``"embed"`` (base64) or ``"auto"`` (link when the page sits in ``results_dir``)."""
    if images not in IMAGES:
        raise CSBenchError(f"unknown images mode {images!r}; valid: {', '.join(IMAGES)}")
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise CSBenchError(f"no results folder {results_dir}: run 'make tables' (or 'cs-bench "
                           "run ... --markdown results/NAME.md') first, or give --results DIR")
    if not any(results_dir.glob("*.md")) and not any(results_dir.glob("*.png")):
        raise CSBenchError(f"{results_dir} holds no tables (*.md) or figures (*.png) to report")
    out = Path(out) if out else results_dir / "index.html"
    if out.is_dir():
        raise CSBenchError(f"cannot write {out}: it is a directory")
    if images == "auto":
        images = "link" if out.parent.resolve() == results_dir.resolve() else "embed"
    text = build_html(results_dir, title, out.parent if images == "link" else None)
    atomic_write_text(out, text)
    return out


def cmd_report(args):
    path = write_report(args.results, args.out, images=args.images)
    size = path.stat().st_size
    print(f"{path} ({size / 1e6:.1f} MB" if size >= 1e6 else f"{path} ({size / 1e3:.0f} kB",
          end="): open it in a browser\n")
    return 0


def add_commands(sub):
    s = sub.add_parser(
        "report", help="one HTML page of every table and figure",
        description="Write results/index.html: every table (results/*.md, ours beside the "
                    "paper's numbers), every figure (results/*.png), the training budgets "
                    "and the machine. Figures are linked when the page sits beside them and "
                    "embedded otherwise (--images). Example: cs-bench report --out "
                    "/tmp/results.html (one file that opens anywhere)")
    s.add_argument("--results", default="results", metavar="DIR",
                   help="the folder of tables and figures (default: results)")
    s.add_argument("--out", metavar="FILE", help="the page (default: DIR/index.html)")
    s.add_argument("--images", choices=IMAGES, default="auto",
                   help="link the figures by relative path or embed them as base64 (default "
                        "auto: link when the page is in DIR, embed otherwise)")
    s.set_defaults(func=cmd_report)
