"""`arface export-onnx ARCH --checkpoint PATH -o OUT.onnx`: a registry model to ONNX with a dynamic batch axis.

The export is checked before the file is kept: onnxruntime's output on a random batch must match PyTorch's
(relative max difference < 1e-4); the file is written atomically.
"""

from __future__ import annotations

import argparse
import warnings


def register(sub) -> None:
    p = sub.add_parser("export-onnx", help="export a registry model (+ checkpoint) to ONNX with a dynamic batch axis",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arch", help="registry architecture (see `arface list-models`); kwargs as ARCH,key=value")
    p.add_argument("--checkpoint", required=True, help="PyTorch checkpoint (state dict or dict holding one)")
    p.add_argument("-o", "--output", required=True, help="output .onnx file")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime-vs-PyTorch comparison")
    p.set_defaults(func=run)


def export_onnx(arch: str, checkpoint: str, output: str, opset: int = 17, check: bool = True) -> float | None:
    """Export `torch:ARCH:CHECKPOINT` to `output` (input 'input' N×3×H×W, output 'embeddings' N×D, N dynamic).

    Returns the relative max |onnxruntime − torch| / max |torch| on a random batch of 3 (None without check).
    """
    import numpy as np
    import torch

    from arface_repro.errors import ConfigError
    from arface_repro.models.backends import build_torch_model, read_checkpoint, _parse_arch
    from arface_repro.utils.atomic import atomic_path

    name, kwargs = _parse_arch(arch)
    model = build_torch_model(name, read_checkpoint(checkpoint), checkpoint, **kwargs).eval()
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (3, 3, 112, 112)).astype(np.float32))
    with torch.no_grad():
        ref = model(x).numpy()
    with atomic_path(output) as tmp, warnings.catch_warnings():
        # the TorchScript-based exporter is deprecated but needs no onnxscript; its notice is noise here
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (x,), str(tmp), input_names=["input"], output_names=["embeddings"],
                          dynamic_axes={"input": {0: "batch"}, "embeddings": {0: "batch"}}, opset_version=opset,
                          dynamo=False, do_constant_folding=True)
        if not check:
            return None
        import onnxruntime as ort

        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"input": x.numpy()})[0]
        rel = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12))
        if not rel < 1e-4:
            raise ConfigError(f"{output}: exported ONNX disagrees with PyTorch (relative max diff {rel:.2e}); not written")
    return rel


def run(args) -> int:
    rel = export_onnx(args.arch, args.checkpoint, args.output, args.opset, check=not args.no_check)
    msg = f"wrote {args.output}"
    if rel is not None:
        msg += f" (onnxruntime vs PyTorch relative max diff {rel:.2e})"
    print(msg)
    return 0
