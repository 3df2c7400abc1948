"""The parts of ``cs-bench tables`` (:func:`cs_bench.paper.build.make_tables`), in order."""

#: the paper's tables and what is made from their cells (:mod:`cs_bench.paper.tables`)
PAPER_PARTS = ("table1", "table2", "table3", "table4", "fig6a", "fig6b", "release",
               "ratio_matrix", "phases")
#: beyond the paper, each its own pipeline (:mod:`cs_bench.paper.noise`,
#: :mod:`cs_bench.paper.datasets`): per-image rows kept in their own CSVs, the slow solvers
#: computed only with ``--compute-slow``
BEYOND = ("noise", "datasets")
PARTS = PAPER_PARTS + BEYOND
