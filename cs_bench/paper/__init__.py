"""The paper layer: the ISTA-Net / FISTA-Net paper's reproduction on top of the harness.

``published`` (the paper's numbers), ``zoo`` (the trained models the tables need and the
trainer that makes them), ``tables`` (``cs-bench tables``: Tables 1-4, the release table,
the ratio matrix, the SSIM companions), ``figures`` (Fig. 5, Fig. 6, PSNR against ratio),
``phases`` (PSNR after each phase), beyond the paper ``noise`` (measurement noise) and
``datasets`` (Set5, Set14, BSD100) with their shared ``beyond``, ``build`` (``cs-bench
tables``: every part) and ``bench`` (``cs-bench bench``). It depends on the
harness (``cs_bench``, ``cs_bench.baselines``, ``cs_bench.learned``); the harness never
imports it.
"""
