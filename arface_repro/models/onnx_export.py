"""A PyTorch model to ONNX with a dynamic batch axis (the library of `arface export-onnx`).

- `export_onnx(ARCH, CHECKPOINT, OUT)`: a registry architecture + its checkpoint (`torch:ARCH:PATH`);
- `export_model_onnx(SPEC, OUT)`: a spec `torch:ARCH:PATH` or `arface:CKPT[,mask=off]`.

Input 'input' is N×3×H×W float32, already preprocessed; the file names its preprocessing in its metadata
(`onnx_file.PREPROCESS_METADATA`: colour order, mean, std, size, fit), and the `onnx:` kind applies it. Output
'embeddings' is N×D.

An ARFace model (`arface:CKPT`) is exported whole: patch boxes, Attention-Net, argmax mode, input mask and backbone
in one graph. It has a second input 'landmarks' (`onnx_file.LANDMARKS_INPUT`), N×5×2 float32 (x, y) in the pixels
of the network input (112×112; a 112×96 crop padded to 112×112 has its landmarks moved by +8 in x); the `onnx:` kind
feeds it from the landmarks given to `embed` (the aligned template when none). With `fixed_template` the graph has
no landmarks input and uses the ArcFace 112×112 template for every image (the right choice for aligned crops only).
With `mask=off`, or for a run without an Attention-Net, only the backbone is exported (one input).

The export is checked before the file is kept: onnxruntime's output on a random batch must match PyTorch's (relative
max difference < 1e-4; for ARFace models, max |difference| of the L2-normalised embeddings < 1e-4); the file is
written to a temp file beside the output and renamed.
"""

from __future__ import annotations

import warnings

import numpy as np

from arface_repro.backbones.state_dict import build_torch_model, parse_arch, read_checkpoint
from arface_repro.data.alignment import template_for
from arface_repro.errors import ConfigError
from arface_repro.models.backends import load_model, parse_spec
from arface_repro.models.onnx_file import LANDMARKS_INPUT, PREPROCESS_METADATA
from arface_repro.models.preprocess import default_for_arch
from arface_repro.utils.atomic import atomic_path

TOLERANCE = 1e-4


def _write_metadata(path, meta: dict) -> None:
    import onnx

    model = onnx.load(str(path))
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(model, str(path))


def _export(module, args: tuple, output, input_names, dynamic, opset: int, meta: dict, check) -> float | None:
    """torch.onnx.export to a temp file beside `output`, metadata, `check(tmp)` -> diff, rename."""
    import torch

    with atomic_path(output) as tmp, warnings.catch_warnings():
        # the TorchScript-based exporter is deprecated but needs no onnxscript; its notices are noise here
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        with torch.no_grad():
            try:
                torch.onnx.export(module, args, str(tmp), input_names=input_names, output_names=["embeddings"],
                                  dynamic_axes={**{n: {0: "batch"} for n in dynamic}, "embeddings": {0: "batch"}},
                                  opset_version=opset, dynamo=False, do_constant_folding=True)
            except (torch.onnx.errors.OnnxExporterError, torch.onnx.errors.UnsupportedOperatorError,
                    torch.onnx.errors.SymbolicValueError) as exc:
                raise ConfigError(f"{output}: the network cannot be exported at opset {opset} "
                                  f"({' '.join(str(exc).split())[:200]})") from None
        _write_metadata(tmp, meta)
        return check(tmp) if check is not None else None


def _session(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def export_onnx(arch: str, checkpoint: str, output: str, opset: int = 17, check: bool = True) -> float | None:
    """Export `torch:ARCH:CHECKPOINT` to `output` (input 'input' N×3×H×W, output 'embeddings' N×D, N dynamic).

    Returns the relative max |onnxruntime − torch| / max |torch| on a random batch of 3 (None without check).
    """
    import torch

    name, kwargs = parse_arch(arch)
    model = build_torch_model(name, read_checkpoint(checkpoint), checkpoint, **kwargs).eval()
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (3, 3, 112, 112)).astype(np.float32))
    with torch.no_grad():
        ref = model(x).numpy()

    def compare(tmp):
        got = _session(tmp).run(None, {"input": x.numpy()})[0]
        rel = float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-12))
        if not rel < TOLERANCE:
            raise ConfigError(f"{output}: exported ONNX disagrees with PyTorch (relative max diff {rel:.2e}); not written")
        return rel

    meta = {PREPROCESS_METADATA: default_for_arch(name, getattr(model, "flavour", None)).key(),
            "arface_repro.source": f"torch:{arch}:{checkpoint}"}
    return _export(model, (x,), output, ["input"], ["input"], opset, meta, compare if check else None)


def _fixed_template_module(net, height: int, width: int):
    """ARFace inference with the 5-point template of the network input as every image's landmarks."""
    import torch
    from torch import nn

    class FixedTemplate(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net
            self.register_buffer("template", torch.from_numpy(np.asarray(template_for((height, width)), np.float32))[None])

        def forward(self, x):
            return self.net(x, self.template.expand(x.shape[0], 5, 2))

    return FixedTemplate().eval()


def export_model_onnx(spec: str, output: str, opset: int = 17, check: bool = True, fixed_template: bool = False) -> dict:
    """Export the model of a spec (`torch:ARCH:PATH` or `arface:CKPT[,mask=...]`) to `output`.

    Returns {"inputs": [...], "diff": float | None, "diff_kind": ..., "attention_mask": ...}.
    """
    import torch

    exportable = spec.partition(":")[0] in ("torch", "arface")  # other kinds are files made elsewhere
    kind, arch_text, path = parse_spec(spec) if exportable else (None, None, None)
    if kind == "torch":
        assert arch_text is not None, spec  # parse_spec gives a torch: spec its architecture
        diff = export_onnx(arch_text, str(path), output, opset, check)
        return {"inputs": ["input"], "diff": diff, "diff_kind": "relative max difference", "attention_mask": None}
    if kind != "arface":
        raise ConfigError(f"export-onnx --model {spec!r}: only torch:ARCH:PATH and arface:CKPT specs can be exported")
    # the arface: kind's model (torch at module level): an arface: spec loads this class
    from arface_repro.models.arface_model import ARFaceModel

    model = load_model(spec, device="cpu")
    assert isinstance(model, ARFaceModel), spec
    net = model.net.eval()
    h, w = model.preprocess.size
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(-1, 1, (4, 3, h, w)).astype(np.float32))
    try:
        tpl = np.asarray(template_for((h, w)), np.float32)
    except ConfigError:
        raise ConfigError(f"{spec}: the network takes {h}×{w} inputs, which have no 5-point template") from None
    lm = torch.from_numpy((tpl[None] + rng.normal(0, 2.0, (4, 5, 2))).astype(np.float32))
    with_landmarks = net.attention is not None and not fixed_template
    args: tuple[torch.Tensor, ...]
    if net.attention is None:
        module, args, names = net.backbone.eval(), (x,), ["input"]
    elif fixed_template:
        module, args, names = _fixed_template_module(net, h, w), (x,), ["input"]
        lm = torch.from_numpy(np.broadcast_to(tpl, (4, 5, 2)).copy())
    else:
        module, args, names = net, (x, lm), ["input", LANDMARKS_INPUT]
    with torch.no_grad():
        ref = net(x, lm).numpy() if net.attention is not None else net.backbone(x).numpy()
    unit_ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)

    def compare(tmp):
        feeds = {"input": x.numpy()}
        if with_landmarks:
            feeds[LANDMARKS_INPUT] = lm.numpy()
        got = _session(tmp).run(None, feeds)[0]
        d = float(np.abs(got / np.linalg.norm(got, axis=1, keepdims=True) - unit_ref).max())
        if not d < TOLERANCE:
            raise ConfigError(f"{output}: exported ONNX disagrees with PyTorch (max |difference| of unit embeddings "
                              f"{d:.2e}); not written")
        return d

    state = model.attention_mask + (" (fixed ArcFace template)" if fixed_template and net.attention is not None else "")
    meta = {PREPROCESS_METADATA: model.preprocess.key(), "arface_repro.source": spec,
            "arface_repro.attention_mask": state,
            "arface_repro.landmarks": (f"input '{LANDMARKS_INPUT}': N×5×2 float32 (x, y) in the pixels of the "
                                       f"{h}×{w} network input" if with_landmarks else "none")}
    diff = _export(module, args, output, names, names, opset, meta, compare if check else None)
    return {"inputs": names, "diff": diff, "diff_kind": "max |difference| of unit embeddings", "attention_mask": state}


def opset_range() -> tuple[int, int]:
    """The opsets torch's TorchScript-based exporter (the one used here) can write."""
    try:
        from torch.onnx import _constants as c

        return int(c.ONNX_MIN_OPSET), int(getattr(c, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", c.ONNX_MAX_OPSET))
    except (ImportError, AttributeError):  # pragma: no cover - other torch layouts
        return 7, 17


__all__ = ["export_onnx", "export_model_onnx", "opset_range", "TOLERANCE"]
