"""Runs on many machines: joblib's dask backend on a ``dask.distributed`` cluster.

``cs-bench run --backend dask --scheduler ADDRESS`` sends the benchmark's
(method, image, ratio, noise) tasks to the workers of a dask scheduler; ``ADDRESS`` is

* a scheduler address, ``tcp://host:8786`` (or ``host:8786``);
* a scheduler file, the JSON file ``dask scheduler --scheduler-file FILE`` writes (what a
  SLURM job script hands its workers and the client);
* ``local`` or ``local:N``: a ``LocalCluster`` of N worker processes (one thread each) on this
  machine, started for the run and stopped after it (default N: the cores), to try it out.

From Python, any ``distributed.Client`` does, with joblib's configuration::

    from distributed import Client
    import joblib
    from cs_bench.runner import run

    with Client("tcp://host:8786"), joblib.parallel_config(backend="dask"):
        df = run(["tval3", "ista-wavelet"], "set11", [0.1, 0.25])

or ``with connect("tcp://host:8786"): df = run(...)``. The run cache stays on the client
(:func:`cs_bench.runner.run` looks every result up before any task is sent and stores what
comes back), so a rerun, on the cluster or on this machine alone, computes only what changed.
Each task carries its image (and a user's Phi), and a method of a plugin file (``--plugin``)
or of ``__main__`` travels by value (cloudpickle), so the workers need neither the data nor
the plugin files; they need the same cs-bench, the packages the methods import, and the same
weights (the shipped ones, or ``CS_BENCH_WEIGHTS`` on a shared folder). A worker refuses, in
the row's ``error``, a task whose cs-bench version, code or weights differ from the client's,
or whose method it cannot load.

Needs the ``dask`` extra: ``pip install 'cs-bench[dask]'``.

>>> parse_scheduler("local:3"), parse_scheduler("tcp://10.0.0.5:8786")
(('local', 3), ('address', 'tcp://10.0.0.5:8786'))
"""

import contextlib
import os
from pathlib import Path

from .errors import CSBenchError

INSTALL = "pip install 'cs-bench[dask]'"
#: how long to wait for a scheduler to answer
CONNECT_TIMEOUT = "20s"


def require():
    """The ``distributed`` module, or a one-line CSBenchError naming the install command."""
    try:
        import dask  # noqa: F401
        import distributed
    except ImportError:
        raise CSBenchError(f"--backend dask needs dask.distributed, which is not installed: "
                           f"{INSTALL}") from None
    return distributed


def parse_scheduler(text):
    """``('local', N or None)``, ``('file', path)`` or ``('address', address)``."""
    text = str(text or "").strip()
    if not text:
        raise CSBenchError("--backend dask needs --scheduler ADDRESS: tcp://host:8786, a "
                           "scheduler file, or local:N for N worker processes on this machine")
    if text == "local" or text.startswith("local:"):
        n = text.partition(":")[2]
        if not n:
            return ("local", None)
        if not n.isdigit() or int(n) < 1:
            raise CSBenchError(f"--scheduler {text}: give local:N with N >= 1 worker processes")
        return ("local", int(n))
    if text.endswith(".json") or Path(text).expanduser().is_file():
        path = Path(text).expanduser()
        if not path.is_file():
            raise CSBenchError(f"--scheduler {text}: no such scheduler file")
        return ("file", str(path))
    return ("address", text)


@contextlib.contextmanager
def connect(scheduler, timeout=None):
    """A ``distributed.Client`` for ``scheduler`` (see :func:`parse_scheduler`) with joblib's
    dask backend active, for :func:`cs_bench.runner.run`; the local cluster of ``local:N``
    is stopped on exit."""
    kind, where = parse_scheduler(scheduler)
    distributed = require()
    timeout = timeout or CONNECT_TIMEOUT
    import joblib

    with contextlib.ExitStack() as stack:
        try:
            if kind == "local":
                cluster = stack.enter_context(distributed.LocalCluster(
                    n_workers=where or (os.cpu_count() or 1), threads_per_worker=1,
                    processes=True, dashboard_address=None))
                client = stack.enter_context(distributed.Client(cluster))
            elif kind == "file":
                client = stack.enter_context(distributed.Client(scheduler_file=where,
                                                                timeout=timeout))
            else:
                client = stack.enter_context(distributed.Client(where, timeout=timeout))
        except (OSError, TimeoutError, ValueError) as exc:
            text = str(exc).strip().splitlines()
            raise CSBenchError(f"cannot reach the dask scheduler {scheduler}: "
                               f"{text[0] if text else type(exc).__name__}") from None
        stack.enter_context(joblib.parallel_config(backend="dask"))
        yield client


def by_value(method):
    """``method`` as cloudpickle bytes for a cluster's workers: the class of a plugin file
    (or of ``__main__``) travels by value, so they need not have the file; the bytes are
    loaded inside the task (:func:`load_method`), so a worker that cannot load them fails the
    row instead of losing the task."""
    import sys

    try:
        import cloudpickle
    except ImportError:  # another cluster backend than dask's: joblib's own copy
        from joblib.externals import cloudpickle

    from .plugins import PREFIX

    mod = sys.modules.get(type(method).__module__)
    if mod is not None and mod.__name__.startswith(PREFIX):
        cloudpickle.register_pickle_by_value(mod)
    return cloudpickle.dumps(method)


def load_method(blob):
    """The method :func:`by_value` sent (in a worker); a one-line CSBenchError if this
    worker cannot load it."""
    import pickle  # the client's own method object, sent with the task: never a cache file

    try:
        return pickle.loads(blob)
    except Exception as exc:
        raise CSBenchError(f"this worker cannot load the method ({type(exc).__name__}: {exc}): "
                           "install the same cs-bench and the packages the method imports on "
                           "every machine") from None


def describe(client):
    """One line: the scheduler and its workers."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    threads = sum(w.get("nthreads", 0) for w in workers.values())
    return (f"dask scheduler {client.scheduler.address}: {len(workers)} workers, "
            f"{threads} threads")
