"""``cs-bench info METHOD``: what a method is, its parameters, and for a learned one the
weights it can load.

>>> print(describe("min-norm").splitlines()[0])
min-norm: classical, scopes block (default), image
>>> rows = parameter_rows("ista-wavelet")
>>> [r["name"] for r in rows][:2], rows[0]["type"]
(['iters', 'levels'], 'int')
"""

from .errors import CSBenchError


def _type_name(cls, key, default):
    kind = cls.param_types.get(key)
    if kind is None:
        kind = type(default) if default is not None else str
    return getattr(kind, "__name__", str(kind))


def parameter_rows(name):
    """One dict per parameter: name, type, default (None: chosen from the ratio)."""
    from .registry import method_class

    cls = method_class(name)
    return [{"name": k, "type": _type_name(cls, k, v), "default": v}
            for k, v in sorted(cls.params.items())]


def weights_rows(name):
    """The weights files of a learned method (shipped and user), one dict each: name,
    ratio, Np, Nf, epochs, validation PSNR, whether it is the default for its ratio, where."""
    from .learned import weights as wt

    rows = []
    for e in wt.available():
        try:
            m = e.meta()
        except CSBenchError:
            continue
        if m.get("method") != name:
            continue
        ratio = m.get("ratio")
        default = ratio is not None and e.name == wt.default_name(name, ratio)
        epochs = m.get("epochs_done")
        if epochs is not None and m.get("epoch_blocks") and m.get("training_blocks"):
            epochs = round(epochs * m["epoch_blocks"] / m["training_blocks"], 2)  # short epochs
        psnr = m.get("val_psnr")
        rows.append({"name": e.name, "ratio": ratio, "Np": m.get("phases"), "Nf": m.get("nf"),
                     "epochs": epochs, "val_psnr": None if psnr is None else round(psnr, 2),
                     "default": default, "where": e.where})
    return sorted(rows, key=lambda r: (not r["default"], r["ratio"] or 0, r["name"]))


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _columns(rows, cols, heads=None):
    heads = heads or cols
    table = [[_fmt(r[c]) for c in cols] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(heads, *table)]
    return ["  " + "  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip()
            for line in [heads] + table]


def describe(name):
    """The text ``cs-bench info NAME`` prints."""
    import inspect

    from .registry import method_class

    cls = method_class(name)
    scopes = ", ".join(f"{s} (default)" if i == 0 else s for i, s in enumerate(cls.scopes))
    lines = [f"{name}: {cls.family}, scopes {scopes}"]
    if cls.summary:
        lines.append(f"  {cls.summary}")
    doc = inspect.getdoc(cls)
    if doc and doc.strip() != (cls.summary or "").strip():
        first = doc.split("\n\n")[0].replace("\n", " ")
        if first.strip() != cls.summary.strip():
            lines.append(f"  {first}")
    try:
        where = inspect.getsourcefile(cls) if cls.__module__.startswith("_cs_bench_plugin_") \
            else cls.__module__
    except TypeError:
        where = cls.__module__
    lines.append(f"  defined in {where or cls.__module__}")
    params = parameter_rows(name)
    lines.append("")
    if params:
        lines.append("parameters (--param " + name + ".NAME=VALUE; default '-': chosen from "
                     "the ratio or the weights):")
        lines += _columns(params, ["name", "type", "default"])
    else:
        lines.append("parameters: none")
    if cls.family == "learned":
        lines.append("")
        try:
            rows = weights_rows(name)
        except ImportError:
            rows = None
        if rows is None:
            lines.append("weights: the learned part of cs-bench is not installed (torch)")
        elif not rows:
            lines.append(f"weights: none yet; train them with 'cs-bench train {name} "
                         "--ratio 0.25 --profile cpu'")
        else:
            ratios = sorted({r["ratio"] for r in rows if r["default"]})
            lines.append("default weights at ratios: " + (", ".join(f"{r:g}" for r in ratios)
                                                          or "none"))
            lines.append(f"weights ({len(rows)}; pick one with --param {name}.weights=NAME):")
            lines += _columns([{**r, "default": "yes" if r["default"] else ""} for r in rows],
                              ["name", "ratio", "Np", "Nf", "epochs", "val_psnr", "default",
                               "where"],
                              ["name", "ratio", "Np", "Nf", "epochs", "val PSNR", "default",
                               "where"])
    return "\n".join(lines)


def cmd_info(args):
    print(describe(args.method))
    return 0


def add_commands(sub):
    s = sub.add_parser(
        "info", help="a method's family, scopes, parameters and weights",
        description="Show a method's family, scopes, parameters (types and defaults) and, for "
                    "a learned method, the weights it can load and their ratios. "
                    "Example: cs-bench info ista-net")
    s.add_argument("method", help="a method name (cs-bench list)")
    s.set_defaults(func=cmd_info)
