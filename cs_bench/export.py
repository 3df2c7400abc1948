"""Writing results: the long CSV and the Markdown summary, always atomically.

>>> import pandas as pd
>>> df = pd.DataFrame({"method": ["a", "a"], "ratio": [0.1, 0.1], "psnr": [20.0, 22.0],
...                    "ssim": [0.5, 0.7], "seconds": [1.0, 3.0]})
>>> float(summary(df).loc[0, "psnr"])
21.0
"""

import os
import tempfile
from pathlib import Path


from .errors import CSBenchError


def check_writable(path):
    """Fail early, with one line, if ``path`` cannot be written (before a long run)."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise CSBenchError(f"cannot write {path}: it is a directory")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=".cs-bench-check-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise CSBenchError(f"cannot write {path}: {exc.strerror or exc}") from None


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise CSBenchError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_csv(df, path):
    """The long-format results, one row per (method, params, image, ratio, noise)."""
    atomic_write_text(path, df.to_csv(index=False, float_format="%.6g"))


def summary(df, by=("method", "scope", "ratio", "noise_sigma")):
    """Mean PSNR/SSIM/seconds per method x ratio (and failures counted)."""
    by = [c for c in by if c in df.columns]
    ok = df[df["error"].isna()] if "error" in df.columns else df
    agg = ok.groupby(by, dropna=False).agg(
        psnr=("psnr", "mean"), ssim=("ssim", "mean"), seconds=("seconds", "mean"),
        images=("psnr", "size"),
    )
    return agg.reset_index()


def markdown_table(df, digits=2):
    """Markdown summary: rows method (x scope), columns ratio, cells mean PSNR / SSIM."""
    s = summary(df)
    if s.empty:
        return "_no successful results_\n" + _failures(df)
    s["cell"] = s.apply(lambda r: f"{r.psnr:.{digits}f} / {r.ssim:.4f}", axis=1)
    index = ["method", "scope"] + (["noise_sigma"] if s["noise_sigma"].nunique() > 1 else [])
    pivot = s.pivot_table(index=index, columns="ratio", values="cell", aggfunc="first")
    pivot.columns = [f"{c:g}" for c in pivot.columns]
    secs = s.groupby(index)["seconds"].mean().rename("s/image")
    table = pivot.join(secs).reset_index()
    table["s/image"] = table["s/image"].map(lambda v: f"{v:.3g}")
    text = "Mean PSNR (dB) / SSIM per sampling ratio; s/image = mean reconstruction seconds.\n\n"
    text += table.to_markdown(index=False) + "\n"
    return text + _failures(df)


def _failures(df):
    if "error" not in df.columns or not df["error"].notna().any():
        return ""
    bad = df[df["error"].notna()][["method", "image", "ratio", "error"]]
    return "\nFailures:\n\n" + bad.to_markdown(index=False) + "\n"


def write_markdown(df, path, title=None):
    text = (f"# {title}\n\n" if title else "") + markdown_table(df)
    atomic_write_text(path, text)
