"""Learned reconstructors (installed as ``cs_bench.learned``).

``nets`` (torch modules), ``losses`` (L, L*), ``qinit`` (Eq. 11-13), ``trainset`` (T91
blocks), ``train`` (resumable training), ``checkpoint``, ``weights`` (format and lookup),
``official`` (ISTA-Net-PyTorch interop), ``models`` (the harness methods), ``runtime``
(device, precision, threads) and ``cli`` (the ``train``, ``weights``, ``import-official``
and ``export-official`` subcommands).
"""
