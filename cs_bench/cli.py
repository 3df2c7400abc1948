"""The ``cs-bench`` command line.

Every user error is answered with one line on stderr and a non-zero exit code; ``--debug``
shows the traceback instead.
"""

import argparse
import errno
import math
import os
import signal
import sys
import warnings

from . import __version__
from .errors import CSBenchError


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (and exit code 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


_EXAMPLES = {"method": "ista-wavelet,fista-wavelet", "image": "text,page"}


def _split(text, what):
    items = [t.strip() for t in str(text).split(",")]
    if not text or any(not t for t in items):
        raise CSBenchError(f"malformed {what} list '{text}': give comma-separated values, e.g. "
                           + _EXAMPLES.get(what, "0.1,0.25"))
    return items


def _parse_params(specs, methods):
    from .registry import parse_param

    out = {}
    for spec in specs or []:
        if "=" not in spec or "." not in spec.split("=", 1)[0]:
            raise CSBenchError(f"malformed --param '{spec}': use METHOD.NAME=VALUE, "
                               "e.g. ista-wavelet.iters=50")
        lhs, value = spec.split("=", 1)
        method, key = lhs.rsplit(".", 1)
        if method not in methods:
            raise CSBenchError(f"--param '{spec}' names method '{method}', which is not in --methods")
        val = parse_param(method, key, value)
        if isinstance(val, float) and not math.isfinite(val):
            raise CSBenchError(f"parameter {method}.{key}: {value} is not a finite number")
        out.setdefault(method, {})[key] = val
    return out


# -- commands ------------------------------------------------------------------------------
def cmd_list(args):
    from .registry import list_methods, method_class

    rows = []
    for name in list_methods(args.family):
        cls = method_class(name)
        rows.append((name, cls.family, "/".join(cls.scopes), cls.summary))
    width = max((len(r[0]) for r in rows), default=10)
    for name, fam, scopes, summ in rows:
        print(f"{name:<{width}}  {fam:<9}  {scopes:<11}  {summ}")
    return 0


def cmd_run(args):
    from .export import check_outputs, markdown_table, write_csv, write_markdown
    from .runner import check_measurable, run, worker_count

    methods = _split(args.methods, "method")
    from .registry import method_class

    for m in methods:
        method_class(m)  # unknown names fail before any work
    ratios = [check_measurable(r) for r in _split(args.ratios, "ratio")]
    noise = [float(_num(s, "noise")) for s in _split(args.noise, "noise")]
    if args.jobs is not None:
        worker_count(args.jobs, 1)  # --jobs 0: refused before any work
    if args.scheduler and args.backend != "dask":
        raise CSBenchError("--scheduler is the dask scheduler's address: add --backend dask")
    if args.backend == "dask":
        from .cluster import parse_scheduler, require

        if args.jobs is not None:
            raise CSBenchError("--jobs counts processes on this machine; with --backend dask "
                               "the cluster's workers run the tasks: drop --jobs (--scheduler "
                               "local:N starts N workers here)")
        parse_scheduler(args.scheduler)  # a missing or malformed address: before any work
        require()
    for opt in ("noise_seed", "phi_seed"):
        if getattr(args, opt) < 0:
            raise CSBenchError(f"--{opt.replace('_', '-')} {getattr(args, opt)} is not a seed: "
                               "give an integer >= 0")
    check_outputs({"--out": args.out, "--markdown": args.markdown},
                  inputs=_input_files(args))
    # '--images ""' names no image: refused, never read as "every image"
    images = _split(args.images, "image") if args.images is not None else None
    kw = dict(noise=noise, jobs=args.jobs, data_dir=args.data_dir, scope=args.scope,
              params=_parse_params(args.param, methods), phi_path=args.phi,
              phi_seed=args.phi_seed, noise_seed=args.noise_seed, padding=args.padding,
              images=images, cache=not args.no_cache, progress=not args.no_progress)
    if args.backend == "dask":
        from .cluster import connect, describe

        with connect(args.scheduler) as client:
            if not args.no_progress:
                print(f"cs-bench: {describe(client)}", file=sys.stderr)
            df = run(methods, args.dataset, ratios, **kw)
    else:
        df = run(methods, args.dataset, ratios, **kw)
    if args.out:
        write_csv(df, args.out)
    if args.markdown:
        write_markdown(df, args.markdown, title=f"cs-bench results: {args.dataset}")
    print(markdown_table(df), end="")
    failed = int(df["error"].notna().sum())
    if failed:
        first = df.loc[df["error"].notna()].iloc[0]
        print(f"cs-bench: {failed} of {len(df)} reconstructions failed; first: {first['method']} "
              f"on {first['image']}: {first['error']}", file=sys.stderr)
        return 1
    if df.attrs.get("not_cached"):
        print(f"cs-bench: warning: {df.attrs['not_cached']} of {len(df)} results could not be "
              f"cached ({df.attrs['cache_error']}); they are in the output, a rerun computes "
              f"them again", file=sys.stderr)
    return 0


def _input_files(args):
    """The files a run reads (its Phi, the images of a folder dataset): never an output."""
    from pathlib import Path

    files = [args.phi] if args.phi else []
    folder = Path(str(args.dataset))
    if folder.is_dir():
        files += [str(p) for p in folder.iterdir() if p.is_file()]
    return files


def _num(text, what):
    try:
        return float(text)
    except ValueError:
        raise CSBenchError(f"{what} '{text}' is not a number") from None


def cmd_data(args):
    from . import data

    if args.action == "list":
        for ds in data.DATASETS.values():
            n = len(data.SKIMAGE_IMAGES) if ds.name == "skimage" else len(data.files(ds.name))
            print(f"{ds.name:<8} {ds.role:<5} {n:>3} images  {ds.description}")
        return 0
    if args.action == "path":
        from .config import data_dirs

        for p in data_dirs(args.data_dir):
            print(f"{p}{'' if p.exists() else '  (missing)'}")
        return 0
    if not args.name:
        raise CSBenchError(f"'cs-bench data {args.action}' needs a dataset name; valid: "
                           + ", ".join(data.DATASETS))
    refs = data.image_refs(args.name, args.data_dir, download=args.action == "fetch")
    print(f"{args.name}: {len(refs)} images {'fetched and ' if args.action == 'fetch' else ''}"
          "verified (sha256)")
    return 0


def cmd_cache(args):
    """``cache path`` / ``cache clear [--methods A,B]``: the run cache only (the results
    store); training runs (``<cache>/runs/NAME``, checkpoints) are never touched."""
    import shutil

    from .config import cache_dir
    from .registry import method_class
    from .store import Store, default_path

    path = default_path()
    if args.action == "path":
        print(path)
        return 0
    names = None
    if args.methods is not None:  # '--methods ""' is an error, never "every method"
        names = _split(args.methods, "method")
        for n in names:
            method_class(n)  # unknown names: one line with the valid ones
    removed = Store(path).clear(names) if path.exists() else 0
    # results of earlier versions (a joblib folder of pickles, never read now): removed with
    # a full clear; the training runs beside it stay
    legacy = cache_dir() / "runs" / "cs_bench" / "runner"
    if names is None and legacy.is_dir():
        shutil.rmtree(legacy, ignore_errors=True)
    which = f" of {', '.join(names)}" if names else ""
    print(f"removed {removed} cached results{which} from {path} (training runs kept)")
    return 0


# -- parser ----------------------------------------------------------------------------------
def build_parser():
    p = _Parser(prog="cs-bench", description="Block compressive-sensing benchmark.")
    p.add_argument("--version", action="version", version=f"cs-bench {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = p.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("list", help="list the registered methods")
    s.add_argument("--family", choices=["classical", "learned"])
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("run", help="run methods on a dataset at several ratios")
    s.add_argument("--methods", required=True, help="comma-separated method names (cs-bench list)")
    s.add_argument("--ratios", default="0.1,0.25", help="comma-separated ratios in (0, 1]")
    s.add_argument("--dataset", default="skimage", help="set11, t91, set5, set14, bsd100, skimage, "
                   "or a folder of images (default: skimage, offline)")
    s.add_argument("--data-dir", help="folder holding Set11/, T91/ ... (else $CS_BENCH_DATA, cache)")
    s.add_argument("--images", help="comma-separated subset of image names")
    s.add_argument("--noise", default="0", help="measurement noise sigma(s) on the [0,1] scale")
    s.add_argument("--noise-seed", type=int, default=0)
    s.add_argument("--phi", help="your own Phi: .npy or .mat (key 'phi'), shape M x 1089")
    s.add_argument("--phi-seed", type=int, default=0, help="seed of the Gaussian Phi (default 0)")
    s.add_argument("--scope", choices=["block", "image"], help="force a scope for every method")
    s.add_argument("--padding", choices=["paper", "minimal"], default="paper",
                   help="paper: +33-(size mod 33) as ISTA-Net/ReconNet; minimal: next multiple")
    s.add_argument("--param", action="append", metavar="METHOD.NAME=VALUE",
                   help="set a method parameter (repeatable)")
    s.add_argument("--jobs", type=int, default=None,
                   help="worker processes on this machine (joblib; default 1; -1: every core)")
    s.add_argument("--backend", choices=["local", "dask"], default="local",
                   help="where the tasks run: local (this machine, --jobs) or dask (the "
                        "workers of a dask.distributed scheduler, --scheduler; needs "
                        "pip install 'cs-bench[dask]'); the run cache stays here")
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --backend dask: tcp://host:8786, a scheduler file "
                        "(dask scheduler --scheduler-file), or local:N for N worker processes "
                        "on this machine")
    s.add_argument("--out", help="write the long-format CSV here")
    s.add_argument("--markdown", help="write the Markdown summary here")
    s.add_argument("--no-cache", action="store_true", help="recompute everything")
    add_progress_option(s)
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("data", help="list, fetch, verify datasets; show data paths")
    s.add_argument("action", choices=["list", "fetch", "verify", "path"])
    s.add_argument("name", nargs="?")
    s.add_argument("--data-dir")
    s.set_defaults(func=cmd_data)

    s = sub.add_parser("cache", help="show or clear the result cache")
    s.add_argument("action", choices=["path", "clear"])
    s.add_argument("--methods", help="clear: only these methods' results (comma-separated)")
    s.set_defaults(func=cmd_cache)

    for mod in ("cs_bench.learned.cli", "cs_bench.paper.zoo", "cs_bench.paper.commands",
                "cs_bench.info", "cs_bench.plot", "cs_bench.report"):
        _add_optional_commands(sub, mod)
    from .plugins import add_option

    add_option(p, sub)  # --plugin FILE.py on every command
    return p


def add_progress_option(parser):
    """``--no-progress`` (every command with a progress bar); ``--quiet``, its former name
    on ``run``, is still accepted."""
    parser.add_argument("--no-progress", "--quiet", dest="no_progress", action="store_true",
                        help="no progress bar (--quiet: the same, deprecated)")


def _add_optional_commands(sub, module):
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return
    mod.add_commands(sub)


#: OSErrors the machine or a setting causes (full disk, quota, read-only or forbidden place,
#: a file where a folder must be, a name too long), not bugs
_ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                       errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ENAMETOOLONG}

class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, schedulers, container stops): answered as Ctrl-C is."""


def _on_sigterm(signum, frame):
    raise Terminated()


#: exit status of a command whose reader went away (``cs-bench run ... | head``): what a
#: shell reports for a program SIGPIPE ended (128 + 13), as ``seq 1000000 | head`` shows
BROKEN_PIPE_EXIT = 141


def main(argv=None):
    """Run the command line; the exit status.

    A reader that stops early (``cs-bench run ... | head``) ends the command quietly, as it
    does any Unix tool: no traceback, status :data:`BROKEN_PIPE_EXIT`.
    """
    try:
        try:
            return _main(argv)
        finally:  # --help's SystemExit too
            sys.stdout.flush()  # here, not at exit: a closed pipe is answered below
    except BrokenPipeError:
        return _broken_pipe()


def _broken_pipe():
    """Point stdout at /dev/null, so the interpreter's final flush of what is still buffered
    does not fail again at exit, and give the SIGPIPE status."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (an embedding program)
        pass
    return BROKEN_PIPE_EXIT


def _main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = signal.getsignal(signal.SIGTERM)
    env_warnings = os.environ.get("PYTHONWARNINGS")
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (an embedding program): its own handler stays
        previous = None
    try:
        with warnings.catch_warnings():
            if not args.debug:
                # library warnings (PIL, numpy, torch) would add lines to the one-line answer;
                # the environment carries the filter to worker processes
                warnings.simplefilter("ignore")
                os.environ["PYTHONWARNINGS"] = "ignore"
            return _dispatch(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if env_warnings is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = env_warnings


def _dispatch(args):
    try:
        from .plugins import load_from_args

        load_from_args(args)  # --plugin FILE.py: the user's methods, before the command
        return args.func(args) or 0
    except CSBenchError as exc:
        if args.debug:
            raise
        print(f"cs-bench: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # the reader of stdout went away: main() answers it
        raise
    except OSError as exc:
        if args.debug:
            raise
        if exc.errno not in _ENVIRONMENT_ERRNOS:
            return _internal_error(exc)
        where = f"{exc.filename}: " if exc.filename else ""
        if exc.errno in (errno.ENOTDIR, errno.EEXIST) and exc.filename:
            from pathlib import Path

            path = Path(os.fsdecode(exc.filename))
            blocker = next((p for p in [path, *path.parents]
                            if p.exists() and not p.is_dir()), path)
            print(f"cs-bench: error: {where}{blocker} is a file where a folder must be; move it "
                  f"or point CS_BENCH_CACHE / --out elsewhere", file=sys.stderr)
            return 2
        print(f"cs-bench: error: {where}{exc.strerror or exc}; what was saved before is intact: "
              f"fix that and run the same command again", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        if args.debug:
            raise
        what, code = (("terminated (SIGTERM)", 143) if isinstance(exc, Terminated)
                      else ("interrupted", 130))
        print(f"cs-bench: {what}; finished results are cached, run the same command again "
              "to resume", file=sys.stderr)
        return code
    except Exception as exc:  # a bug: still one line unless --debug
        if args.debug:
            raise
        return _internal_error(exc)


def _internal_error(exc):
    print(f"cs-bench: internal error: {type(exc).__name__}: {exc} (rerun with --debug for "
          "the traceback)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
