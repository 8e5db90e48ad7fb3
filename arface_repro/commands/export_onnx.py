"""`arface export-onnx`: a model to ONNX with a dynamic batch axis (the work is `arface_repro.models.onnx_export`).

    arface export-onnx ARCH --checkpoint PATH -o OUT.onnx      a registry architecture + its checkpoint
    arface export-onnx --model SPEC -o OUT.onnx                 a model spec: torch:ARCH:PATH or arface:CKPT[,mask=off]

Input 'input' is N×3×H×W float32, already preprocessed; the file names its preprocessing in its metadata
(`arface_repro.preprocess`: colour order, mean, std, size, fit), and the `onnx:` backend applies it. Output
'embeddings' is N×D.

An ARFace model (`arface:CKPT`) is exported whole: patch boxes, Attention-Net, argmax mode, input mask and backbone
in one graph. It has a second input 'landmarks', N×5×2 float32 (x, y) in the pixels of the network input (112×112;
a 112×96 crop padded to 112×112 has its landmarks moved by +8 in x); the `onnx:` backend feeds it from the
landmarks given to `embed` (the aligned template when none). With `--fixed-template` the graph has no landmarks
input and uses the ArcFace 112×112 template for every image (the right choice for aligned crops only). With
`mask=off`, or for a run without an Attention-Net, only the backbone is exported (one input).

The export is checked before the file is kept: onnxruntime's output on a random batch must match PyTorch's (relative
max difference < 1e-4; for ARFace models, max |difference| of the L2-normalised embeddings < 1e-4); the file is
written atomically.
"""

from __future__ import annotations

import argparse

from arface_repro.errors import ConfigError
from arface_repro.models.onnx_export import export_model_onnx, export_onnx, opset_range
from arface_repro.utils.outputs import Output, check_outputs, spec_files


def register(sub) -> None:
    p = sub.add_parser("export-onnx", help="export a registry model (+ checkpoint) or a model spec to ONNX",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arch", nargs="?", help="registry architecture (see `arface list-models`); kwargs as ARCH,key=value")
    p.add_argument("--checkpoint", help="PyTorch checkpoint (state dict or dict holding one), with ARCH")
    p.add_argument("--model", help="model spec instead of ARCH --checkpoint: torch:ARCH:PATH or arface:CKPT[,mask=off]")
    p.add_argument("-o", "--output", required=True, help="output .onnx file")
    p.add_argument("--fixed-template", action="store_true",
                   help="ARFace: no 'landmarks' input; patch centres from the ArcFace 112×112 template")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime-vs-PyTorch comparison")
    p.set_defaults(func=run)


def check_export_args(args) -> None:
    """Opset, output and inputs, before the network is built or any file written."""
    lo, hi = opset_range()
    if not lo <= args.opset <= hi:
        raise ConfigError(f"--opset {args.opset}: this PyTorch exports opsets {lo}..{hi}")
    if not str(args.output).lower().endswith(".onnx"):
        raise ConfigError(f"-o {args.output}: an ONNX model file ends in .onnx")
    check_outputs([Output(args.output, "-o")], [args.checkpoint, *spec_files(args.model)])


def run(args) -> int:
    check_export_args(args)

    if args.model:
        if args.arch or args.checkpoint:
            raise ConfigError("export-onnx: give either ARCH --checkpoint PATH or --model SPEC, not both")
        info = export_model_onnx(args.model, args.output, args.opset, check=not args.no_check,
                                 fixed_template=args.fixed_template)
    else:
        if not args.arch or not args.checkpoint:
            raise ConfigError("export-onnx: give ARCH --checkpoint PATH, or --model SPEC")
        if args.fixed_template:
            raise ConfigError("export-onnx: --fixed-template applies to arface:CKPT models (--model)")
        diff = export_onnx(args.arch, args.checkpoint, args.output, args.opset, check=not args.no_check)
        info = {"inputs": ["input"], "diff": diff, "diff_kind": "relative max diff", "attention_mask": None}
    msg = f"wrote {args.output} (inputs: {', '.join(info['inputs'])}"
    if info["attention_mask"]:
        msg += f"; attention mask: {info['attention_mask']}"
    msg += ")"
    if info["diff"] is not None:
        msg += f"; onnxruntime vs PyTorch {info['diff_kind']} {info['diff']:.2e}"
    print(msg)
    return 0
