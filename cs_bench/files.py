"""Files written whole or not at all, and file digests: the one place for both.

Every result, table, figure, checkpoint and weights file of cs-bench is written through
:func:`atomic_write`: the content goes to a temporary file in the target's folder, is flushed
to disk, and replaces the target with one ``os.replace``. A crash, a full disk or Ctrl-C leaves
the old file or the new one, never a mix. The new file gets the old one's permissions, or the
umask's for a new file (``mkstemp`` alone would make it 0600).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_text(d / "a.txt", "hello")
>>> (d / "a.txt").read_text(), sorted(p.name for p in d.iterdir())
('hello', ['a.txt'])
>>> sha256(d / "a.txt")[:12]
'2cf24dba5fb0'
"""

import os
import re
import tempfile
from functools import lru_cache
from pathlib import Path


def umask():
    """The process's umask (read without changing it for longer than one call)."""
    old = os.umask(0)
    os.umask(old)
    return old


def _target_mode(path):
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~umask()


def atomic_write(path, write, suffix=".tmp"):
    """Write ``path`` whole or not at all: ``write(tmp)`` fills a temporary file beside it.

    ``suffix`` is the temporary file's (a writer that picks its format from the name, such as
    matplotlib's ``savefig``, needs the real one). An ``OSError`` (full disk, no permission)
    propagates as such; a writer that reports the system's error in its own exception type
    (safetensors: "No space left on device (os error 28)") is answered as that ``OSError``.
    The temporary file never outlives the call.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:  # on disk before the rename: a full disk shows here
            os.fsync(f.fileno())
        os.chmod(tmp, _target_mode(path))
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise
    except Exception as exc:
        Path(tmp).unlink(missing_ok=True)
        code = re.search(r"os error (\d+)", str(exc))
        if code:
            n = int(code.group(1))
            raise OSError(n, os.strerror(n), str(path)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path, text):
    """:func:`atomic_write` of a UTF-8 text (newlines written as given)."""

    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)

    atomic_write(path, write)


@lru_cache(maxsize=4096)
def _sha256_cached(path, mtime_ns, size):
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256(path):
    """sha256 (hex) of a file's bytes, cached on (path, mtime, size)."""
    st = Path(path).stat()
    return _sha256_cached(str(path), st.st_mtime_ns, st.st_size)
