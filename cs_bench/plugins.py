"""Methods from outside the package: plugin files, ``$CS_BENCH_PLUGINS`` and entry points.

Three ways in, none needing an edit to the installed package:

* ``cs-bench --plugin mine.py ...`` or ``cs-bench run --plugin mine.py ...`` (repeatable):
  a Python file whose ``@register(NAME)`` classes become methods. A file that fails to load
  is an error (one line naming it, exit 2): the user asked for it.
* ``$CS_BENCH_PLUGINS``: a path list (``os.pathsep``-separated) of such files, loaded with
  the built-in methods. A broken one is named in one warning line on stderr and skipped;
  every other command still works.
* the ``cs_bench.methods`` entry-point group of installed packages, in their
  ``pyproject.toml``::

      [project.entry-points."cs_bench.methods"]
      mine = "my_package.methods"           # a module whose @register classes register
      other = "my_package.methods:Other"    # or one Method class, registered as "other"

  A broken entry point is reported and skipped like a broken ``$CS_BENCH_PLUGINS`` file.

A plugin file is imported as the module ``_cs_bench_plugin_<stem>_<hash of its path>``;
its folder goes on ``sys.path`` (so it can import its neighbours), and a finder installed
with this module lets ``--jobs`` worker processes import it by that name too.

:func:`method_code_id` is the method's part of the run cache key: the hash of its source.

>>> module_name("/home/me/mine.py").startswith("_cs_bench_plugin_mine_")
True
"""

import hashlib
import importlib
import importlib.abc
import importlib.util
import os
import sys
from pathlib import Path

from .errors import CSBenchError

#: The environment variable holding plugin files (a path list).
ENV = "CS_BENCH_PLUGINS"
#: The entry-point group installed packages register methods in.
GROUP = "cs_bench.methods"
#: Plugin files loaded by this process, for its worker processes (set by :func:`load_file`).
_LOADED_ENV = "_CS_BENCH_PLUGIN_FILES"
PREFIX = "_cs_bench_plugin_"

_loaded_files = {}  # resolved path -> module
_reported = set()


def module_name(path):
    """The module name a plugin file is imported as (stable for a given path)."""
    path = Path(path).expanduser().resolve()
    stem = "".join(c if c.isalnum() or c == "_" else "_" for c in path.stem)
    return f"{PREFIX}{stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"


class _PluginFinder(importlib.abc.MetaPathFinder):
    """Finds ``_cs_bench_plugin_*`` modules among the files the parent process loaded, so a
    worker process can unpickle a plugin's method objects."""

    def find_spec(self, name, path=None, target=None):
        if not name.startswith(PREFIX):
            return None
        for f in os.environ.get(_LOADED_ENV, "").split(os.pathsep):
            if f and module_name(f) == name:
                return importlib.util.spec_from_file_location(name, f)
        return None


if not any(isinstance(f, _PluginFinder) for f in sys.meta_path):
    sys.meta_path.append(_PluginFinder())


def _one_line(exc):
    text = str(exc).strip().splitlines()
    msg = f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
    if isinstance(exc, SyntaxError) and exc.lineno:
        msg += f" (line {exc.lineno})"
    return msg


def load_file(path):
    """Import the plugin file ``path`` (its ``@register`` classes register); the module.

    Loading the same file again returns the module already loaded. A missing or broken file
    raises a one-line :class:`CSBenchError` naming it.
    """
    from . import registry

    registry.load_builtin()  # built-in names first: a plugin cannot take them over
    p = Path(path).expanduser()
    if not p.is_file():
        raise CSBenchError(f"plugin {path}: no such file (give the path of a .py file)")
    if p.suffix != ".py":
        raise CSBenchError(f"plugin {path}: not a .py file")
    key = p.resolve()
    if key in _loaded_files:
        return _loaded_files[key]
    name = module_name(key)
    spec = importlib.util.spec_from_file_location(name, key)
    mod = importlib.util.module_from_spec(spec)
    folder = str(key.parent)
    if folder not in sys.path:
        sys.path.append(folder)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise CSBenchError(f"plugin {path} failed to load: {_one_line(exc)}") from exc
    _loaded_files[key] = mod
    files = [f for f in os.environ.get(_LOADED_ENV, "").split(os.pathsep) if f]
    if str(key) not in files:
        os.environ[_LOADED_ENV] = os.pathsep.join(files + [str(key)])
    return mod


def load_files(paths):
    """Load every plugin file in ``paths`` (the ``--plugin`` options); stop at a broken one."""
    return [load_file(p) for p in paths or []]


def _warn(what):
    line = f"cs-bench: warning: {what}; skipped, its methods are unavailable"
    if line not in _reported:
        _reported.add(line)
        print(line, file=sys.stderr)


def env_files():
    """The plugin files named in ``$CS_BENCH_PLUGINS`` (empty entries ignored)."""
    return [f for f in os.environ.get(ENV, "").split(os.pathsep) if f.strip()]


def load_environment():
    """Load ``$CS_BENCH_PLUGINS`` files and ``cs_bench.methods`` entry points; a broken one is
    reported in one line on stderr and skipped. Called once by the registry."""
    for f in env_files():
        try:
            load_file(f)
        except CSBenchError as exc:
            _warn(f"${ENV}: {exc}")
    for ep in _entry_points():
        try:
            _load_entry_point(ep)
        except Exception as exc:  # noqa: BLE001 - a broken package must not break cs-bench
            _warn(f"entry point {ep.name} = {ep.value} ({GROUP}) failed to load: "
                  f"{_one_line(exc)}")


def _entry_points():
    from importlib.metadata import entry_points

    try:
        return list(entry_points(group=GROUP))
    except Exception:  # noqa: BLE001 - unreadable metadata of some installed package
        return []


def _load_entry_point(ep):
    from .method import Method
    from .registry import _REGISTRY, register

    obj = ep.load()
    if isinstance(obj, type) and issubclass(obj, Method) and _REGISTRY.get(obj.name) is not obj:
        register(ep.name)(obj)
    return obj


# -- the command line ---------------------------------------------------------------------
_HELP = ("load methods from a Python file whose @register classes define them (repeatable; "
         f"${ENV} holds more, a path list), e.g. --plugin mine.py")


def add_option(parser, subparsers):
    """Add ``--plugin FILE.py`` to the main parser and to every command's parser."""
    parser.add_argument("--plugin", action="append", dest="plugin_files_top", metavar="FILE.py",
                        help=_HELP)
    for sub in subparsers.choices.values():
        if not any("--plugin" in a.option_strings for a in sub._actions):
            sub.add_argument("--plugin", action="append", dest="plugin_files",
                             metavar="FILE.py", help=_HELP)


def load_from_args(args):
    """Load the ``--plugin`` files of parsed arguments (before the command runs)."""
    files = (getattr(args, "plugin_files_top", None) or []) + (getattr(args, "plugin_files",
                                                                         None) or [])
    return load_files(files)


# -- the method's part of the cache key ---------------------------------------------------
def method_code_id(cls):
    """Hash of a method class's source, part of the run cache key; None when no source can be
    found (such a method is never cached).

    A class defined in a module file (the built-in methods, plugin files, scripts) is hashed
    as :func:`cs_bench.runner.code_id` hashes its module: the file, the modules of its folder
    it imports and the harness core. A class without a file (a notebook cell) is hashed from
    the source :func:`inspect.getsource` finds, with the harness core; defined in ``python -c``
    it has none.

    >>> from cs_bench.registry import method_class
    >>> from cs_bench.runner import code_id
    >>> from cs_bench.registry import list_methods
    >>> all(method_code_id(method_class(n)) == code_id(method_class(n).__module__)
    ...     for n in list_methods())
    True
    """

    mod = sys.modules.get(cls.__module__)
    file = getattr(mod, "__file__", None)
    # a module other than __main__ is the same file in every process; __main__ is only where
    # the class really is in it (a --jobs worker's __main__ is another program)
    if file and Path(file).is_file() and (cls.__module__ != "__main__"
                                          or getattr(mod, cls.__name__, None) is cls):
        from .runner import code_id

        return code_id(cls.__module__)
    try:
        source = _class_source(cls)
    except (OSError, TypeError):
        return None
    h = hashlib.sha256(source.encode())
    core = Path(__file__).parent
    for f in ("problem.py", "sensing.py", "blocks.py", "method.py"):
        h.update(f.encode())
        h.update((core / f).read_bytes())
    return "src:" + h.hexdigest()[:12]


def _class_source(cls):
    """The source of a class, or of each of its functions where the class's own cannot be
    found (a class in a notebook cell: its functions' code is in the line cache)."""
    import inspect

    try:
        return inspect.getsource(cls)
    except (OSError, TypeError):
        pass
    parts = [cls.__qualname__]
    for key, value in sorted(vars(cls).items()):
        func = getattr(value, "__func__", value)
        if inspect.isfunction(func):
            parts.append(inspect.getsource(func))  # OSError when there is none
        elif not key.startswith("__"):
            parts.append(f"{key} = {value!r}")
    return "\n".join(parts)


__all__ = ["load_file", "load_files", "load_environment", "add_option", "load_from_args",
           "method_code_id", "module_name", "ENV", "GROUP"]
