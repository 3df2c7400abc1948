"""The paper's name of every method the tables run (one map for tables, figures and bench).

>>> label("d-amp"), label("reconnet-enhanced"), label("my-method")
('D-AMP', 'Enhanced ReconNet', 'my-method')
"""

from ..learned.spec import SPECS

#: learned methods: their specs' labels
LEARNED_LABELS = {name: s.label for name, s in SPECS.items()}
#: the classical rows of the paper's tables
CLASSICAL = {"TVAL3": "tval3", "NLR-CS": "nlr-cs", "D-AMP": "d-amp"}
#: ours, not in the paper: references
EXTRA = {"ISTA (wavelet)": "ista-wavelet", "FISTA (wavelet)": "fista-wavelet",
         "min-norm": "min-norm"}
LABELS = {**LEARNED_LABELS, **{v: k for k, v in CLASSICAL.items()},
          **{v: k for k, v in EXTRA.items()}}


def label(method):
    return LABELS.get(method, method)
