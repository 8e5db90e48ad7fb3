"""`arface list-models`: the model presets (`PRESET:FILE` specs) with the figures their authors report, the
registered architectures (for `torch:ARCH:PATH` specs and `export-onnx`), and the model kinds (spec prefixes)."""

from __future__ import annotations

from arface_repro.backbones.registry import create_model, list_models
from arface_repro.models.kinds import KINDS
from arface_repro.models.presets import list_presets, load_preset


def register(sub) -> None:
    p = sub.add_parser("list-models", help="list model presets (with their reported figures) and architectures",
                       description="List the model presets (protocols/models/*.yaml: PRESET:FILE specs) with the "
                                   "figures their authors report, then the registered architectures "
                                   "(torch:ARCH:FILE specs), then the model kinds (the spec prefixes).")
    p.add_argument("pattern", nargs="?", default=None, help="shell-style filter, e.g. 'iresnet*' or 'adaface*'")
    p.add_argument("--params", action="store_true", help="also build each architecture and print its parameter count")
    p.set_defaults(func=run)


def preset_lines(pattern: str | None) -> list[str]:
    """One line per preset (name, backend, input size, embedding size) and one per reported figure under it."""
    import fnmatch

    lines = []
    for name in list_presets():
        if pattern and not fnmatch.fnmatchcase(name, pattern):
            continue
        p = load_preset(name)
        size = "x".join(str(v) for v in p.input["size"])
        dim = f"{p.embedding_size}-d" if p.embedding_size else "?-d"
        lines.append(f"  {name:<32} {p.backend:<8} {size:<8} {dim}")
        for r in p.reported:
            lines.append(f"      reported: {r['benchmark']} {r['metric']} {r['value']}"
                         + (f" ({r['protocol']})" if r.get("protocol") else "") + f" [{r['source']}]")
        if not p.reported:
            lines.append("      reported: none")
    return lines


def run(args) -> int:
    import fnmatch

    presets = preset_lines(args.pattern)
    if presets:
        print("presets (spec PRESET:FILE; protocols/models/*.yaml):")
        print("\n".join(presets))
    archs = list_models(args.pattern)
    if archs:
        print("architectures (spec torch:ARCH:FILE; export-onnx):")
    for name in archs:
        if args.params:
            m = create_model(name)
            n = sum(p.numel() for p in m.parameters())
            print(f"  {name}\t{n:,} parameters\t{getattr(m, 'embedding_size', '?')}-d")
        else:
            print(f"  {name}")
    kinds = [k for k in KINDS.values() if not args.pattern or fnmatch.fnmatchcase(k.name, args.pattern)]
    if kinds:
        print("model kinds (spec NAME:...; arface_repro/models/kinds):")
    for k in kinds:
        print(f"  {k.syntax}" + (f"  (or a bare *{', *'.join(k.suffixes)})" if k.suffixes else ""))
    return 0
