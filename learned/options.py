"""The choices of the learned commands, importable without torch (``cs-bench --help`` and the
argument parser read them; :mod:`~cs_bench.learned.runtime` and
:mod:`~cs_bench.learned.train` use the same objects).

>>> sorted(PROFILES), SCHEDULES[0], DEVICES[0]
(['cpu', 'paper'], 'constant', 'auto')
"""

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
SCHEDULES = ("constant", "cosine", "onecycle")
#: training presets: the paper's 300 epochs (a GPU), and the reduced run a CPU affords
PROFILES = {
    "paper": {"epochs": 300, "lr": 1e-3, "batch": 64, "schedule": "constant", "precision": "fp32"},
    "cpu": {"epochs": 5, "lr": 1e-3, "batch": 64, "schedule": "cosine", "precision": "auto"},
}
