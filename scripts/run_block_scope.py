"""Set11 at block scope (the paper's protocol) for a slow solver, through the run cache.

    .venv/bin/python scripts/run_block_scope.py d-amp 0.25 0.1 [--jobs 2]
    .venv/bin/python scripts/run_block_scope.py nlr-cs 0.25 0.1

One ratio at a time, so every finished ratio is cached (scripts/scope_table.py, the tables
and ``cs-bench run --scope block`` reuse it) and written to results/<method>_block_set11.csv.
"""

import argparse

import pandas as pd

from cs_bench.export import write_csv
from cs_bench.registry import get_method
from cs_bench.runner import run


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("method")
    ap.add_argument("ratios", nargs="+", type=float)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    frames = []
    for r in args.ratios:
        df = run([get_method(args.method, scope="block")], "set11", ratios=[r], jobs=args.jobs)
        frames.append(df)
        print(r, round(df["psnr"].mean(), 2), round(df["seconds"].median(), 1), flush=True)
        write_csv(pd.concat(frames), f"results/{args.method}_block_set11.csv")


if __name__ == "__main__":
    main()
