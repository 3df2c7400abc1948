"""The choices of the learned commands, importable without torch (``cs-bench --help`` and the
argument parser read them; :mod:`~cs_bench.learned.runtime` and
:mod:`~cs_bench.learned.train` use the same objects).

>>> sorted(PROFILES), SCHEDULES[0], DEVICES[0]
(['cpu', 'paper'], 'constant', 'auto')
"""

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")
SCHEDULES = ("constant", "cosine", "onecycle")
#: starts of the unrolled networks: the paper's Xavier, or every phase as the identity map
INITS = ("xavier", "identity")
#: training presets: the paper's 300 epochs (a GPU), and the reduced run a CPU affords, whose
#: start and schedule are the training study's winner (results/training_study.md)
PROFILES = {
    "paper": {"epochs": 300, "lr": 1e-3, "batch": 64, "schedule": "constant", "precision": "fp32",
              "init": "xavier"},
    "cpu": {"epochs": 5, "lr": 2e-3, "batch": 64, "schedule": "onecycle", "precision": "auto",
            "init": "identity"},
}
