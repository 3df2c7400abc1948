"""``cs-bench tables``: every part (:data:`~cs_bench.paper.parts.PARTS`) into results/.

The paper's tables (:func:`cs_bench.paper.tables.make_tables`) and the parts beyond the paper
(:func:`cs_bench.paper.noise.make_noise`, :func:`cs_bench.paper.datasets.make_datasets`),
which take every row computed by the same code from the run cache or their own CSVs, compute
the rest, and compute D-AMP and NLR-CS only with ``compute_slow``.
"""

from ..errors import unknown_name
from .parts import BEYOND, PARTS


def make_tables(out="results", dataset="set11", data_dir=None, jobs=1, figures=True,
                progress=True, only=None, cached_only=(), reuse=(), compute_slow=False):
    """Make the parts in ``only`` (default: all; the parts beyond the paper by default only
    with the paper's set11, which they are defined on); the paper tables' cells (None when
    only beyond-the-paper parts were asked for). ``cached_only`` and ``reuse``: see
    :func:`cs_bench.paper.tables.make_tables` (the beyond parts reuse same-code rows of their
    own CSVs for every method)."""
    from . import tables

    for part in only or ():
        if part not in PARTS:
            raise unknown_name("table", part, PARTS)
    if cached_only or reuse:
        from ..registry import list_methods

        for m in list(cached_only) + list(reuse):
            if m not in list_methods():
                raise unknown_name("method", m, list_methods())
    paper = [p for p in only if p not in BEYOND] if only else None
    beyond = [p for p in BEYOND if (p in only if only else dataset == "set11")]
    cells_df = None
    if not only or paper:
        cells_df = tables.make_tables(out, dataset, data_dir, jobs, figures, progress, paper,
                                      cached_only, reuse)
    for part in beyond:
        if part == "noise":
            from .noise import make_noise

            make_noise(out, dataset, data_dir, jobs, progress, figures, cached_only,
                       compute_slow)
        else:
            from ..registry import list_methods
            from .beyond import COMPUTED_BY_TABLES
            from .datasets import make_datasets

            # a full run (no --only) makes this part from cached rows (see COMPUTED_BY_TABLES)
            cached = cached_only if only or part in COMPUTED_BY_TABLES else list_methods()
            make_datasets(out, data_dir, jobs, progress, figures, cached, compute_slow)
    return cells_df
