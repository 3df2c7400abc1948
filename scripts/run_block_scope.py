"""Set11 at one scope for a slow solver, ratio by ratio, through the run cache.

    .venv/bin/python scripts/run_block_scope.py d-amp 0.25 0.1 [--jobs 2]
    .venv/bin/python scripts/run_block_scope.py nlr-cs 0.4 --scope image

One ratio at a time, so every finished ratio is cached (scripts/scope_table.py, the tables
and ``cs-bench run --scope block`` reuse it) and merged into
results/<method>_<scope>_set11.csv: rows of this run replace those of the same ratio, rows of
other ratios are kept.
"""

import argparse
from pathlib import Path

import pandas as pd

from cs_bench.export import write_csv
from cs_bench.registry import get_method
from cs_bench.runner import run


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("method")
    ap.add_argument("ratios", nargs="+", type=float)
    ap.add_argument("--scope", default="block", choices=("block", "image"))
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    out = Path(f"results/{args.method}_{args.scope}_set11.csv")
    for r in args.ratios:
        df = run([get_method(args.method, scope=args.scope)], "set11", ratios=[r], jobs=args.jobs)
        print(r, round(df["psnr"].mean(), 2), round(df["seconds"].median(), 1), flush=True)
        if out.exists():
            old = pd.read_csv(out)
            df = pd.concat([old[~old["ratio"].round(4).isin(df["ratio"].round(4))], df])
        write_csv(df.sort_values(["ratio", "image"]), out)


if __name__ == "__main__":
    main()
