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


def check_writable(path, inputs=()):
    """Fail early, with one line, if ``path`` cannot or must not be written (before a long
    run): a folder, a device, FIFO or other non-regular file (the atomic rename would replace
    it), one of the run's ``inputs`` (files or folders the run reads), or a place the user
    cannot write."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise CSBenchError(f"cannot write {path}: it is a directory")
    if os.path.lexists(path) and not path.is_file():
        raise CSBenchError(f"cannot write {path}: it is {_kind(path)}, not a regular file; "
                           f"give a file path")
    real = Path(os.path.realpath(path))
    for item in inputs:
        if not item:
            continue
        inp = Path(os.path.realpath(item))
        if real == inp or (inp.is_dir() and inp in real.parents):
            raise CSBenchError(f"cannot write {path}: it is "
                               + ("an input of this run" if real == inp else
                                  f"inside the input folder {item}")
                               + "; write the results elsewhere")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=".cs-bench-check-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise CSBenchError(f"cannot write {path}: {exc.strerror or exc}") from None


def check_outputs(outputs, inputs=()):
    """:func:`check_writable` for every output path given (``None`` skipped), and no two of
    them the same file; ``outputs`` is {option name: path}, e.g. {"--out": "r.csv"}.

    The check to call before any work in every command that writes results (run, tables,
    bench), so a bad path costs nothing.
    """
    seen = {}
    for opt, path in outputs.items():
        if not path:
            continue
        real = os.path.realpath(path)
        if real in seen:
            raise CSBenchError(f"{seen[real]} and {opt} name the same file {path}; one would "
                               f"overwrite the other: give two paths")
        seen[real] = opt
        check_writable(path, inputs)


def _kind(path):
    import stat

    mode = os.stat(path).st_mode if os.path.exists(path) else os.lstat(path).st_mode
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISLNK, "a broken symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` atomically (:func:`cs_bench.files.atomic_write`); a path that
    is not a regular file, or a failed write, is one line (:class:`CSBenchError`)."""
    from .files import atomic_write_text as write

    path = Path(path)
    if os.path.lexists(path) and not path.is_file():
        raise CSBenchError(f"cannot write {path}: it is {_kind(path)}, not a regular file")
    try:
        write(path, text)
    except OSError as exc:
        raise CSBenchError(f"cannot write {path}: {exc.strerror or exc}") from None


def write_csv(df, path):
    """The long-format results, one row per (method, params, image, ratio, noise)."""
    atomic_write_text(path, df.to_csv(index=False, float_format="%.6g"))


def summary(df, by=("method", "scope", "ratio", "noise_sigma")):
    """Per method x ratio (x scope, noise): the images scored, mean and standard deviation
    (sample, n - 1; NaN for one image) of PSNR and SSIM over them, mean seconds per image,
    and the failed rows (a group with only failures has 0 images)."""
    by = [c for c in by if c in df.columns]
    failed = df["error"].notna() if "error" in df.columns else df["psnr"].isna() & False
    ok = df[~failed]
    agg = ok.groupby(by, dropna=False).agg(
        images=("psnr", "size"), psnr=("psnr", "mean"), psnr_sd=("psnr", "std"),
        ssim=("ssim", "mean"), ssim_sd=("ssim", "std"), seconds=("seconds", "mean"),
    )
    bad = df[failed].groupby(by, dropna=False).size().rename("failed")
    out = agg.join(bad, how="outer")
    out["images"] = out["images"].fillna(0).astype(int)
    out["failed"] = out["failed"].fillna(0).astype(int)
    return out.reset_index()


def _spread(mean, sd, n, digits):
    """``mean ± sd``; the mean alone for one image, '-' for none."""
    if not n:
        return "-"
    if n > 1 and sd == sd:  # sd is NaN for one image
        return f"{mean:.{digits}f} ± {sd:.{digits}f}"
    return f"{mean:.{digits}f}"


def markdown_table(df, digits=2):
    """Markdown summary: one row per method (x scope, noise) and ratio, with the images
    scored, PSNR and SSIM as mean ± standard deviation over them, and mean seconds per image
    at that ratio.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"method": ["a"] * 3, "scope": "block", "ratio": [0.1, 0.1, 0.25],
    ...                    "noise_sigma": 0.0, "psnr": [20.0, 22.0, 30.0],
    ...                    "ssim": [0.5, 0.7, 0.9], "seconds": [1.0, 3.0, 5.0], "error": None})
    >>> print(markdown_table(df).splitlines()[-2])
    | a        | block   |    0.1  |        2 | 21.00 ± 1.41 | 0.6000 ± 0.1414 |         2 |
    """
    s = summary(df)
    if s.empty or not s["images"].any():
        return "_no successful results_\n" + _failures(df)
    index = ["method", "scope"] + (["noise_sigma"] if s["noise_sigma"].nunique() > 1 else [])
    s = s.sort_values(index + ["ratio"], kind="stable")
    table = s[index + ["ratio", "images"]].copy()
    if s["failed"].any():
        table["failed"] = s["failed"]
    table["PSNR (dB)"] = [_spread(m, sd, n, digits)
                          for m, sd, n in zip(s["psnr"], s["psnr_sd"], s["images"])]
    table["SSIM"] = [_spread(m, sd, n, 4) for m, sd, n in zip(s["ssim"], s["ssim_sd"],
                                                               s["images"])]
    table["s/image"] = [f"{v:.3g}" if n else "-" for v, n in zip(s["seconds"], s["images"])]
    text = ("PSNR (dB) and SSIM: mean ± standard deviation over the images scored (sample sd; "
            "the mean alone for one image); s/image: mean reconstruction seconds per image at "
            "that ratio.\n\n")
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
