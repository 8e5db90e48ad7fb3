"""`arface list-models`: the registered architectures (for `torch:ARCH:PATH` specs and `export-onnx`)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("list-models", help="list registered model architectures",
                       description="List the registered model architectures.")
    p.add_argument("pattern", nargs="?", default=None, help="shell-style filter, e.g. 'iresnet*'")
    p.add_argument("--params", action="store_true", help="also build each model and print its parameter count")
    p.set_defaults(func=run)


def run(args) -> int:
    from arface_repro.models.registry import create_model, list_models

    for name in list_models(args.pattern):
        if args.params:
            m = create_model(name)
            n = sum(p.numel() for p in m.parameters())
            print(f"{name}\t{n:,} parameters\t{getattr(m, 'embedding_size', '?')}-d")
        else:
            print(name)
    return 0
