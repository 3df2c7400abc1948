"""Torch's thread count for a stretch of code: the one place solvers pin it.

The classical solvers call torch for many small products (blocks, patch groups); on a CPU
shared with other busy processes, torch's thread pool then mostly spins, so they run these
stretches on one thread and parallelise over images instead (``--jobs``).

>>> import torch
>>> before = torch.get_num_threads()
>>> with torch_threads(1):
...     torch.get_num_threads()
1
>>> torch.get_num_threads() == before
True
"""

from contextlib import contextmanager


@contextmanager
def torch_threads(n=1):
    """Run torch on ``n`` threads inside the block, then restore its thread count."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
