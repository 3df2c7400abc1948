"""Learned reconstructors (installed as ``cs_bench.learned``).

``spec`` (one declarative spec per learned method: network, loss, label, weights names),
``nets`` (torch modules), ``losses`` (L, L*), ``qinit`` (Eq. 11-13), ``trainset`` (T91
blocks), ``train`` (resumable training), ``checkpoint``, ``weights`` (format and lookup),
``official`` (ISTA-Net-PyTorch interop), ``release`` (the authors' released models, fetched
and sha256-checked), ``models`` (the harness methods), ``runtime``
(device, precision, threads) and ``cli`` (the ``train``, ``weights``, ``import-official``
and ``export-official`` subcommands).
"""
