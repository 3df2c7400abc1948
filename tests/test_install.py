"""The install is lean and proper: licence, URLs, dependency floors, what the wheel and the
sdist hold. Read from pyproject.toml and MANIFEST.in; nothing is built (building the wheel
copies ~35 MB and is measured by hand, see docs/DEVELOPING.md)."""

import fnmatch
import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = Path(__file__).resolve().parents[1]
WHEEL_LIMIT = 40 * 2**20


@pytest.fixture(scope="module")
def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_licence_file_and_spdx(project):
    meta = project["project"]
    assert meta["license"] == "MIT"  # an SPDX expression, not a free text
    assert meta["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY" in text
    assert int(re.search(r"setuptools>=(\d+)", project["build-system"]["requires"][0])[1]) >= 77


def test_project_urls(project):
    urls = project["project"]["urls"]
    assert urls and all(u.startswith("https://") for u in urls.values())


def test_joblib_floor(project):
    # the runner uses Parallel(return_as="generator_unordered"), new in joblib 1.4
    deps = {re.split(r"[<>=!~ ]", d, maxsplit=1)[0].lower(): d for d in project["project"]["dependencies"]}
    assert deps["joblib"].replace(" ", "") == "joblib>=1.4"


def _package_dirs(project):
    """{package: its folder} as setuptools maps them (package-dir, else the dotted path)."""
    tool = project["tool"]["setuptools"]
    mapped = tool.get("package-dir", {})
    out = {}
    for pkg in tool["packages"]:
        parent = next((p for p in sorted(mapped, key=len, reverse=True)
                       if pkg == p or pkg.startswith(p + ".")), None)
        rel = mapped[parent] + pkg[len(parent):].replace(".", "/") if parent else \
            pkg.replace(".", "/")
        out[pkg] = ROOT / rel
    return out


def test_every_subpackage_is_in_the_wheel(project):
    dirs = _package_dirs(project)
    assert all((d / "__init__.py").is_file() for d in dirs.values())
    listed = {d.resolve() for d in dirs.values()}
    for top in {ROOT / "cs_bench", ROOT / "baselines", ROOT / "learned"}:
        for init in top.rglob("__init__.py"):
            if "__pycache__" not in init.parts:
                assert init.parent.resolve() in listed, f"{init.parent} is not in packages"


def _wheel_payload(project):
    """The files the wheel takes from the packages' folders: modules and package data."""
    tool = project["tool"]["setuptools"]
    dirs = _package_dirs(project)
    include, exclude = tool["package-data"], tool.get("exclude-package-data", {})
    out = []
    for pkg, base in dirs.items():
        out += [p for p in base.glob("*.py")]
        for pattern in include.get(pkg, []):
            for p in base.glob(pattern):
                rel = p.relative_to(base).as_posix()
                if not any(fnmatch.fnmatch(rel, x) for x in exclude.get(pkg, [])):
                    out.append(p)
    return out


def test_wheel_leaves_out_the_ablation_weights(project):
    files = _wheel_payload(project)
    names = {p.name for p in files}
    assert not any(n.endswith("_t2.safetensors") for n in names)
    assert "ista-net_r0.25_np9_nf32.safetensors" in names  # the Tier 1 zoo ships
    assert "index.json" in names
    assert "sha256sums.txt" in names
    total = sum(p.stat().st_size for p in files)
    assert total <= WHEEL_LIMIT, f"the wheel's payload is {total / 2**20:.1f} MiB"


def test_ablation_weights_stay_in_the_repository():
    # `make tables` runs from the repository (an editable install), where they are found
    from cs_bench.learned import weights as wt

    assert wt.package_dir() == ROOT / "learned" / "weights"
    assert len(list(wt.package_dir().glob("*_t2.safetensors"))) == 24


def test_sdist_manifest_has_what_the_readme_names():
    lines = (ROOT / "MANIFEST.in").read_text().splitlines()
    included = " ".join(line for line in lines if line.startswith(("include", "recursive-include")))
    for name in ("LICENSE", "Makefile", "constraints.txt", "docs"):
        assert name in included
    assert any(line.startswith("exclude") and "_t2" in line for line in lines)
