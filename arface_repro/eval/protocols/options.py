"""The option parser of `arface evaluate --protocol P`: options common to every protocol plus P's own."""

from __future__ import annotations

import argparse

from arface_repro.eval.protocols import protocol_names
from arface_repro.eval.protocols.spec import load_spec
from arface_repro.utils.argtypes import batch_size, int_range


def add_common_arguments(p: argparse.ArgumentParser, protocol_names) -> None:
    p.add_argument("--protocol", required=True, choices=protocol_names, metavar="P",
                   help="the protocol (see `arface evaluate --help` for the list)")
    src = p.add_argument_group("features (one of)")
    g = src.add_mutually_exclusive_group()
    g.add_argument("--features", metavar="FILE", help="precomputed features: " + "%(features_help)s")
    g.add_argument("--model", metavar="SPEC",
                   help="a checkpoint to extract features with: onnx:F, torch:ARCH:F, torchscript:F, tflite:F, ... "
                        "(images from --data-root)")
    src.add_argument("--label", help="--features: the model name to put in the record")
    p.add_argument("--data-root", metavar="DIR",
                   help="dataset root: protocol files are found under it (protocols/<name>.yaml), and the images for --model")
    p.add_argument("--device", default="auto",
                   help="auto (CUDA when present), cpu, cuda, cuda:N; model extraction and score blocks")
    x = p.add_argument_group("extraction (--model)")
    x.add_argument("--batch-size", type=batch_size, default=64, help="images per forward pass (default 64)")
    x.add_argument("--workers", type=int_range(0, 256), default=2, help="image-reading processes (default 2)")
    x.add_argument("--cache-dir", default=".cache/embeddings",
                   help="feature cache folder (default .cache/embeddings; 'none' disables it)")
    x.add_argument("--save-features", metavar="FILE", help="also write the extracted feature store here")
    x.add_argument("--preprocess", help="override the model's preprocessing, e.g. 'color=BGR,std=127.5,fit=resize'")
    x.add_argument("--landmarks", metavar="FILE",
                   help="5-point landmarks per image (`arface align`'s landmarks.txt) for models that use them "
                        "(default <data-root>/landmarks.txt when present)")
    o = p.add_argument_group("output")
    o.add_argument("--out", help="record path (default results/runs/<protocol>-<model>-<time>.json)")
    o.add_argument("--runs-dir", default="results/runs", help="folder for records when --out is not given")
    o.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser(cls, prog: str | None = None) -> argparse.ArgumentParser:
    """Common options + the options `cls.add_arguments` declares."""

    p = argparse.ArgumentParser(
        prog=prog or "arface evaluate",
        description=f"{cls.name}: {cls.summary}\n\n{_spec_text(cls)}",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_arguments(p, protocol_names())
    for a in p._actions:  # the --features help names what this protocol reads
        if a.dest == "features" and a.help:
            a.help = a.help % {"features_help": cls.features_help}
    cls.add_arguments(p)
    return p


def _spec_text(cls) -> str:
    s = load_spec(cls.name)
    files = ", ".join(f"{k}={v}" for k, v in s.layout.items())
    alts = f" (also: {', '.join(s.alternative_rules)})" if s.alternative_rules else ""
    return (f"rule: {s.default_rule}{alts}\nmetrics: {', '.join(s.metrics)}\n"
            f"files under --data-root: {files}\nreference: {s.reference['name']} - {s.reference['where']}")
