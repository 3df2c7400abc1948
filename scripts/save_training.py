"""Stage in git the training state that must outlive this machine (``make save-training``).

Every run folder of ``zoo_runs/`` keeps its ``log.csv`` and ``start.json`` in git. A run still
in progress also keeps its ``checkpoint.safetensors`` (where training resumes), added past
``.gitignore``. The checkpoint carries the run's best epoch so far (which a later epoch may
not beat), and a resumed run writes ``best.safetensors`` again from it, so that file (the same
network with Qinit, about 2 MB more) leaves the index; it is kept only beside a checkpoint
made before checkpoints carried the best epoch. A run that has ended (its budget spent, or
the stop rule) has had its best epoch installed in ``learned/weights/`` or refused, so its
weights files leave the index and stay on disk. A zoo run is in progress while its log has not ended under its plan
(``cs_bench.paper.zoo``); a training-study run while it has a checkpoint (a finished study run
deletes its own).

Only the index changes; commit afterwards. ``--dry-run`` prints what it would do.

    python scripts/save_training.py --dry-run
"""

import argparse
import subprocess
import sys
from pathlib import Path

from cs_bench.learned.checkpoint import read_best
from cs_bench.paper import zoo

RUNS = Path(zoo.RUNS)
CHECKPOINT, BEST = "checkpoint.safetensors", "best.safetensors"
WEIGHTS = (CHECKPOINT, BEST)
RECORDS = ("log.csv", zoo.START)


def in_progress(run):
    """Whether the run in folder ``run`` has training left that a checkout must resume."""
    if not (run / "checkpoint.safetensors").is_file():
        return False
    done = zoo.run_ended(run)
    if done is None:
        return run.name.startswith("study-")
    return not done


def changes():
    """(files to add, files to leave the index): every run's records; an in-progress run's
    checkpoint (and its best epoch's file where the checkpoint does not carry that epoch);
    the other tracked weights files."""
    tracked = set(subprocess.run(["git", "ls-files", "--", str(RUNS)], capture_output=True,
                                 text=True, check=True).stdout.split())
    add, drop = [], []
    for run in sorted(p for p in RUNS.iterdir() if p.is_dir()):
        add += [run / f for f in RECORDS if (run / f).is_file()]
        keep = []
        if in_progress(run):
            keep = [CHECKPOINT] if read_best(run / CHECKPOINT) is not None else list(WEIGHTS)
            add += [run / f for f in keep if (run / f).is_file()]
        drop += [run / f for f in WEIGHTS if f not in keep and (run / f).as_posix() in tracked]
    return add, drop


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="print, change nothing")
    args = ap.parse_args(argv)
    if not RUNS.is_dir():
        print(f"no {RUNS}/ here: run from the repository root", file=sys.stderr)
        return 2
    add, drop = changes()
    for f in add:
        if f.suffix == ".safetensors":
            print(f"keep  {f} ({f.stat().st_size / 1e6:.1f} MB)")
    for f in drop:
        why = "its checkpoint carries it" if f.name == BEST and (f.parent / CHECKPOINT) in add \
            else "the run has ended"
        print(f"untrack {f} ({why}; the file stays on disk)")
    if args.dry_run:
        return 0
    if add:
        subprocess.run(["git", "add", "-f", "--", *map(str, add)], check=True)
    if drop:
        subprocess.run(["git", "rm", "-q", "--cached", "--", *map(str, drop)], check=True)
    print(f"staged {len(add)} files, untracked {len(drop)}; commit them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
