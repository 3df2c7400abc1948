"""The training presets and choices, importable without torch (``cs-bench train --help`` reads
them). Inference imports none of this, so editing a preset leaves cached results valid (the
run cache's key hashes the learned methods' modules).

>>> sorted(PROFILES), SCHEDULES[0], INITS
(['cpu', 'paper'], 'constant', ('xavier', 'identity'))
>>> PROFILES["cpu"]["schedule"], PROFILES["cpu"]["init"]
('onecycle', 'identity')
"""

SCHEDULES = ("constant", "cosine", "onecycle")
#: starts of the unrolled networks: the paper's Xavier, or every phase as the identity map
#: (``nets.identity_init``)
INITS = ("xavier", "identity")
#: training presets: the paper's 300 epochs (a GPU), and the reduced run a CPU affords, whose
#: start and schedule are the training study's winner (results/training_study.md)
PROFILES = {
    "paper": {"epochs": 300, "lr": 1e-3, "batch": 64, "schedule": "constant", "precision": "fp32",
              "init": "xavier"},
    "cpu": {"epochs": 5, "lr": 2e-3, "batch": 64, "schedule": "onecycle", "precision": "auto",
            "init": "identity"},
}
