"""The parts of ``cs-bench tables`` (:func:`cs_bench.paper.tables.make_tables`), in order."""

PARTS = ("table1", "table2", "table3", "table4", "fig6a", "fig6b", "release", "ratio_matrix",
         "phases")
