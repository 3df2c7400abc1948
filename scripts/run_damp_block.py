"""Set11 D-AMP at block scope (the paper's protocol) through the runner's cache.

    .venv/bin/python scripts/run_damp_block.py 0.25 0.1 0.4

Writes results/damp_block_set11.csv (long format, the runner's rows); the rows are in the
run cache, so scripts/scope_table.py and the tables reuse them.
"""

import sys

from cs_bench.export import write_csv
from cs_bench.registry import get_method
from cs_bench.runner import run

ratios = [float(r) for r in sys.argv[1:]] or [0.25, 0.1]
frames = []
for r in ratios:  # one ratio at a time, so each finished ratio is cached and written
    df = run([get_method("d-amp", scope="block")], "set11", ratios=[r], jobs=2)
    frames.append(df)
    print(r, df["psnr"].mean(), df["seconds"].median(), flush=True)
    import pandas as pd

    write_csv(pd.concat(frames), "results/damp_block_set11.csv")
