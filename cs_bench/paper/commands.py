"""The paper layer's subcommands, ``tables`` and ``bench``: their parsers import nothing heavy
(pandas, torch and the solvers load when a command runs), so ``cs-bench --help`` stays fast.
"""

from pathlib import Path

from .parts import PARTS


def add_commands(sub):
    _add_tables(sub)
    _add_bench(sub)


def _add_tables(sub):
    s = sub.add_parser("tables", help="regenerate the paper's tables and figures into results/")
    s.add_argument("--out", default="results")
    s.add_argument("--dataset", default="set11")
    s.add_argument("--data-dir")
    s.add_argument("--jobs", type=int, default=2)
    s.add_argument("--no-figures", action="store_true")
    s.add_argument("--only", help=f"comma-separated subset of {', '.join(PARTS)} (default: all)")
    s.add_argument("--cached-only", default="",
                   help="comma-separated methods not to compute: their cached results are "
                        "used, the rest shown as 'not run' (e.g. d-amp)")
    s.add_argument("--reuse", default="",
                   help="comma-separated methods whose results missing from the run cache are "
                        "taken from OUT/all_runs.csv where it holds the same result computed "
                        "by the same code (the 'code' column); the rest are computed")
    s.add_argument("--compute-slow", action="store_true",
                   help="the parts beyond the paper (noise, datasets) compute D-AMP and NLR-CS "
                        "too (hours; BSD100 on its first 10 images); without it they show "
                        "those solvers' missing cells as 'not run' (make beyond-slow)")
    s.set_defaults(func=cmd_tables)


def cmd_tables(args):
    from ..errors import CSBenchError
    from ..export import check_outputs

    only = [p.strip() for p in args.only.split(",") if p.strip()] if args.only else None
    if args.jobs < 1:
        raise CSBenchError(f"--jobs must be at least 1, got {args.jobs}")
    cached_only = [m.strip() for m in args.cached_only.split(",") if m.strip()]
    reuse = [m.strip() for m in args.reuse.split(",") if m.strip()]
    check_outputs({"--out": Path(args.out) / "table2.md"})  # before the work, not after
    from .build import make_tables

    make_tables(args.out, args.dataset, args.data_dir, args.jobs, not args.no_figures, only=only,
                cached_only=cached_only, reuse=reuse, compute_slow=args.compute_slow)
    return 0


def _add_bench(sub):
    s = sub.add_parser("bench", help="speed benchmark into results/bench.md")
    s.add_argument("--out", default="results")
    s.add_argument("--methods", help="comma-separated subset (default: every method)")
    s.add_argument("--repeats", type=int, default=3)
    s.add_argument("--ratio", type=float, default=0.25)
    s.add_argument("--dataset", default="set11")
    s.add_argument("--data-dir")
    s.add_argument("--threads", type=int,
                   help="torch CPU threads (default: torch's; 1 when another job holds a core)")
    s.set_defaults(func=cmd_bench)


def cmd_bench(args):
    from ..registry import method_class

    methods = None
    if args.methods:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        for m in methods:
            method_class(m)
    if args.threads is not None:
        from ..errors import CSBenchError
        from ..learned.runtime import set_threads

        if args.threads < 1:
            raise CSBenchError(f"--threads must be at least 1, got {args.threads}")
        set_threads(args.threads)
    if args.repeats < 1:
        from ..errors import CSBenchError

        raise CSBenchError(f"--repeats must be at least 1, got {args.repeats}")
    from ..export import check_outputs

    check_outputs({"--out": Path(args.out) / "bench.md"})  # before the work, not after
    from .bench import run_bench

    run_bench(args.out, methods, args.repeats, args.ratio, args.dataset, args.data_dir)
    return 0
