"""The two layers: the harness (cs_bench, baselines, learned) never imports the paper layer
(cs_bench.paper), and the paper layer's modules import each other without a cycle."""

import ast
from pathlib import Path

import cs_bench

ROOT = Path(cs_bench.__file__).parent


def _imports():
    """{module: set of cs_bench modules it imports (relative imports resolved)}."""
    edges = {}
    for f in ROOT.rglob("*.py"):
        parts = f.relative_to(ROOT).with_suffix("").parts
        mod = ".".join(("cs_bench",) + parts).removesuffix(".__init__")
        pkg = mod if f.name == "__init__.py" else mod.rsplit(".", 1)[0]
        deps = set()
        for n in ast.walk(ast.parse(f.read_text())):
            if isinstance(n, ast.ImportFrom) and n.level:
                base = pkg.split(".")[:len(pkg.split(".")) - (n.level - 1)]
                target = ".".join(base + ([n.module] if n.module else []))
                deps |= {f"{target}.{a.name}" for a in n.names} if n.module is None else {target}
            elif isinstance(n, ast.ImportFrom) and (n.module or "").startswith("cs_bench"):
                deps.add(n.module)
        edges[mod] = deps
    return edges


def test_the_harness_never_imports_the_paper_layer():
    edges = _imports()
    assert "cs_bench.paper.tables" in edges and "cs_bench.runner" in edges
    bad = [(m, d) for m, ds in edges.items() if not m.startswith("cs_bench.paper")
           for d in ds if d.startswith("cs_bench.paper")]
    assert bad == []


def test_the_paper_layer_has_no_import_cycle():
    edges = {m: {d for d in ds if d.startswith("cs_bench.paper.")}
             for m, ds in _imports().items() if m.startswith("cs_bench.paper.")}
    state = {}

    def visit(m, path):
        state[m] = "open"
        for d in edges.get(m, ()):
            assert state.get(d) != "open", " -> ".join(path + [d])
            if d not in state:
                visit(d, path + [d])
        state[m] = "done"

    for m in edges:
        if m not in state:
            visit(m, [m])
