"""The runtime choices of the learned methods, importable without torch (``cs-bench --help``
and the argument parser read them; :mod:`~cs_bench.learned.runtime` uses the same objects).
The training presets are in :mod:`~cs_bench.learned.profiles`.

>>> DEVICES[0], PRECISIONS
('auto', ('auto', 'fp32', 'bf16'))
"""

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
