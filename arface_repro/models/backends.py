"""Checkpoint backends: one `EmbeddingModel` interface over PyTorch, TorchScript, ONNX and TFLite files.

A model spec string picks the backend:
- `torch:ARCH:PATH` — a registry architecture (`arface list-models`) plus a state dict or a checkpoint dict holding
  one under 'state_dict' / 'model_state_dict' / 'model' / 'backbone' / 'net'; `module.`, `model.`, `backbone.`,
  `_orig_mod.` prefixes are stripped. Loading is strict: missing/unexpected keys and shape mismatches are a
  ConfigError listing them. Keyword arguments go after the name: `torch:mobilefacenet,embedding_size=512:PATH`;
  without `embedding_size` it is read from the checkpoint. Checkpoints are read with `weights_only=True` only
  (`arface_repro.models.safe_load`): a file that stores other Python objects is refused, never unpickled.
- `torchscript:PATH` — a TorchScript file taking N×3×H×W. Such a file is a program: it is loaded only when the
  caller says the spec came from the user (`trust_torchscript=True`: `--model` typed on the command line, or
  `reproduce_table.py --trust-torchscript`), never from DATA.yaml, a preset or a config.
- `onnx:PATH` (or a bare `*.onnx`) — onnxruntime, given the file as read by `onnx_file.read_onnx` (external
  data only from inside the model's folder); NCHW or NHWC is read from the input shape, as are a fixed
  batch size (the last batch is zero-padded and the padding rows dropped) and a fixed H×W.
- `tflite:PATH` (or a bare `*.tflite`) — ai-edge-litert (optional extra `[tflite]`), NHWC, fixed or dynamic batch.
- `arface:CKPT[,mask=on|off]` — an `arface train` checkpoint (or its run folder): Attention-Net, argmax input mask
  and Feature-Net backbone (`arface_repro.models.arface_model`).
- `opencv:MODEL.pb`, `opencv:MODEL.onnx`, `opencv:NET.prototxt:WEIGHTS.caffemodel` — cv2.dnn (`opencv_backend`);
  `onnx:` and bare `*.onnx` specs fall back to it when onnxruntime is not installed.
- `caffe:NET.prototxt:WEIGHTS.caffemodel` — Caffe deploy networks run in PyTorch (`caffe_net`; OpenCV 5 has no
  Caffe importer).
- `tfgraph:MODEL.pb` — TensorFlow frozen graphs run in PyTorch (`tf_graph_net`; OpenCV 5.1 has no TensorFlow
  importer, and `opencv:MODEL.pb` falls back to it there).
- `PRESET:PATH` — a model preset `protocols/models/PRESET.yaml` (`presets`): backend, architecture and
  preprocessing of a known checkpoint family, e.g. `facenet-20180408:graph_final.pb`.

Every backend: `model.embed(uint8 N×H×W×3 RGB, landmarks=None) -> float32 N×D` (it applies `model.preprocess`
itself), `model.spec`, `model.preprocess`, `model.file_sha256`, `model.embedding_size` (None until known for
files). Models with `uses_landmarks` use the 5-point landmarks (N×5×2, pixels of the images given; None = the
aligned template; see `arface_repro.models.input_landmarks`); the others ignore them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from arface_repro.errors import ConfigError, FormatError, MissingDataError
from arface_repro.models.onnx_file import read_onnx
from arface_repro.models.preprocess import GENERIC, Preprocess, default_for_arch
from arface_repro.utils.hashing import sha256_bytes, sha256_file
from arface_repro.utils.devices import check_device
from arface_repro.utils.input_files import check_regular

CONTAINER_KEYS = ("state_dict", "model_state_dict", "model", "backbone", "net")
PREFIXES = ("module.", "_orig_mod.", "model.", "backbone.")
KINDS = ("torch", "torchscript", "onnx", "tflite", "arface")


class EmbeddingModel:
    """Common interface. Subclasses implement `_run(float32 N×H×W×3) -> N×D` for a batch they accept."""

    kind = "?"
    uses_landmarks = False  # True: `_run(x, landmarks)` gets N×5×2 landmarks in network-input pixels

    def __init__(self, spec: str, preprocess: Preprocess, file_sha256: str, fixed_batch: int | None = None,
                 embedding_size: int | None = None):
        self.spec = spec
        self.preprocess = preprocess
        self.file_sha256 = file_sha256
        self.fixed_batch = fixed_batch
        self.embedding_size = embedding_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r}, preprocess={self.preprocess.key()})"

    def identity(self) -> dict:
        """What determines the outputs (used in embedding cache keys and result records)."""
        return {"kind": self.kind, "spec": self.spec, "sha256": self.file_sha256, "preprocess": self.preprocess.key()}

    def embed(self, batch: np.ndarray, landmarks=None) -> np.ndarray:
        """uint8 N×H×W×3 RGB images -> float32 N×D raw (unnormalised) embeddings. `landmarks`: float N×5×2 in the
        images' pixels, for models that use them (None: the aligned template); ignored by the others."""
        x = self.preprocess(batch, name=f"input to {self.spec}")
        n = len(x)
        if n == 0:
            return np.zeros((0, self.embedding_size or 0), dtype=np.float32)
        lm = None
        if self.uses_landmarks:
            from arface_repro.models.input_landmarks import network_landmarks

            lm = network_landmarks(landmarks, batch.shape[1:3], self.preprocess, n, f"input to {self.spec}")

        def run(xs, ls):
            return self._run(xs) if ls is None else self._run(xs, ls)

        if self.fixed_batch:
            b = self.fixed_batch
            outs = []
            for i in range(0, n, b):
                chunk = x[i:i + b]
                lchunk = None if lm is None else lm[i:i + b]
                k = len(chunk)
                if k < b:  # the network only takes exactly b images: zero-pad, then drop the padding rows
                    chunk = np.concatenate([chunk, np.zeros((b - k,) + chunk.shape[1:], np.float32)])
                    if lchunk is not None:
                        lchunk = np.concatenate([lchunk, np.zeros((b - k, 5, 2), np.float32)])
                outs.append(self._checked(run(chunk, lchunk), b)[:k])
            out = np.concatenate(outs)
        else:
            out = self._checked(run(x, lm), n)
        self.embedding_size = out.shape[1]
        return out

    def _checked(self, out, n: int) -> np.ndarray:
        out = np.asarray(out, dtype=np.float32)
        if out.ndim > 2 and all(d == 1 for d in out.shape[2:]):
            out = out.reshape(out.shape[:2])
        if out.ndim != 2 or out.shape[0] != n:
            raise FormatError(f"{self.spec}: the network returned shape {out.shape} for {n} images; expected {n}×D")
        return out

    def _run(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


# ---------------------------------------------------------------- torch


def resolve_device(device=None):
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(device)


class TorchModel(EmbeddingModel):
    kind = "torch"

    def __init__(self, module, spec: str, preprocess: Preprocess, file_sha256: str, device=None):
        self.device = resolve_device(device)
        self.module = module.to(self.device)
        super().__init__(spec, preprocess, file_sha256, embedding_size=getattr(module, "embedding_size", None))

    @classmethod
    def from_module(cls, module, name: str = "module", preprocess: Preprocess | None = None, device=None) -> "TorchModel":
        """Wrap an in-memory nn.Module (e.g. during training; it is moved to `device`, run in eval mode and left
        in the mode it had). Its `file_sha256` is the hash of its state dict at wrapping time."""
        h = state_dict_sha256(module.state_dict())
        return cls(module, f"torch-module:{name}", preprocess or GENERIC, h, device)

    def _run(self, x: np.ndarray) -> np.ndarray:
        import torch

        t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).to(self.device)
        was_training = self.module.training
        self.module.eval()  # BN running statistics, no dropout; a training module gets its mode back below
        try:
            with torch.inference_mode():
                out = self.module(t)
        except RuntimeError as exc:
            raise ConfigError(f"{self.spec}: the network failed on input {tuple(t.shape)} (N×C×H×W): "
                              f"{str(exc).splitlines()[0]}") from exc
        finally:
            self.module.train(was_training)
        if isinstance(out, (tuple, list)):  # e.g. AdaFace returns (embedding, norm): the embedding is first
            out = out[0]
        return out.float().cpu().numpy()


def state_dict_sha256(sd) -> str:
    """sha256 over names, shapes, dtypes and bytes of a state dict (the hash of an in-memory model)."""
    import hashlib

    import torch

    h = hashlib.sha256()
    for k, v in sd.items():
        a = v.detach().cpu().contiguous()
        h.update(f"{k}|{tuple(a.shape)}|{a.dtype}|".encode())
        h.update(a.view(-1).view(torch.uint8).numpy().tobytes() if a.numel() else b"")
    return h.hexdigest()


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The state dict inside a PyTorch checkpoint file, prefixes stripped; clear errors for bad files."""
    from arface_repro.models.safe_load import torch_load_safe

    obj = torch_load_safe(path, "PyTorch checkpoint")
    return strip_prefixes(unwrap_state_dict(obj, path))


def unwrap_state_dict(obj, path) -> dict:
    import torch

    for _ in range(4):
        if isinstance(obj, torch.nn.Module):
            obj = obj.state_dict()
        if not isinstance(obj, Mapping):
            raise FormatError(f"{path}: expected a state dict or a checkpoint dict, got {type(obj).__name__}")
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        for k in CONTAINER_KEYS:
            if k in obj:
                obj = obj[k]
                break
        else:
            raise FormatError(f"{path}: no state dict found: top-level keys are {sorted(map(str, obj))[:10]}; "
                              f"expected tensors or one of {', '.join(CONTAINER_KEYS)}")
    raise FormatError(f"{path}: no state dict found (nested too deeply)")


def strip_prefixes(sd: dict) -> dict:
    """Remove DataParallel/compile/wrapper prefixes; from a model+head checkpoint keep the `backbone.` part."""
    changed = True
    while changed and sd:
        changed = False
        for p in PREFIXES:
            if all(k.startswith(p) for k in sd):
                sd = {k[len(p):]: v for k, v in sd.items()}
                changed = True
            elif p == "backbone." and any(k.startswith(p) for k in sd):
                sd = {k[len(p):]: v for k, v in sd.items() if k.startswith(p)}
                changed = True
            elif p == "model." and any(k.startswith(p) for k in sd) and all(k.startswith((p, "head.")) for k in sd):
                # a Lightning module's checkpoint (AdaFace): the network under `model.`, the margin head under `head.`
                sd = {k[len(p):]: v for k, v in sd.items() if k.startswith(p)}
                changed = True
    return sd


def _shown(items, n=5) -> str:
    return ", ".join(map(str, items[:n])) + (f" … ({len(items)} in all)" if len(items) > n else "")


def build_torch_model(arch: str, sd: dict, path, **kwargs):
    """Registry model `arch` with checkpoint `sd` loaded strictly (embedding_size read from sd if not given)."""
    from arface_repro.models.registry import create_model, list_models

    model = create_model(arch, **kwargs)
    infer = getattr(model, "kwargs_from_state_dict", None)  # e.g. the IR flavour told by its keys, or the size
    extra = {k: v for k, v in (infer(sd) if callable(infer) else {}).items() if k not in kwargs}  # of a stored classifier
    if extra:
        kwargs = {**kwargs, **extra}
        model = create_model(arch, **kwargs)
    if "embedding_size" not in kwargs and getattr(model, "embedding_size", None):
        msd = model.state_dict()
        d = model.embedding_size
        diff = [k for k, v in msd.items() if k in sd and v.ndim >= 1 and v.shape[0] == d
                and sd[k].ndim == v.ndim and sd[k].shape[0] != d and sd[k].shape[1:] == v.shape[1:]]
        if diff:
            model = create_model(arch, embedding_size=int(sd[diff[-1]].shape[0]), **kwargs)
    msd = model.state_dict()
    missing = [k for k in msd if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in msd]
    shapes = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(v.shape)}"
              for k, v in msd.items() if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_shown(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_shown(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es): {_shown(shapes, 3)}")
        raise ConfigError(f"{path}: checkpoint does not fit architecture {arch!r} ({'; '.join(parts)}). "
                          f"Is it a checkpoint of another architecture? Registered: {', '.join(list_models())}")
    full = dict(sd)
    for k in msd:
        if k not in full:  # only num_batches_tracked (unused at inference) may be absent
            full[k] = msd[k]
    model.load_state_dict(full, strict=True)
    return model


def _parse_arch(text: str) -> tuple[str, dict]:
    """'mobilefacenet,embedding_size=512' -> ('mobilefacenet', {'embedding_size': 512})."""
    name, *rest = [s.strip() for s in text.split(",")]
    kwargs = {}
    for item in rest:
        if "=" not in item:
            raise ConfigError(f"model spec: architecture argument {item!r} is not key=value")
        k, v = item.split("=", 1)
        for conv in (int, float):
            try:
                kwargs[k] = conv(v)
                break
            except ValueError:
                continue
        else:
            kwargs[k] = v
    return name, kwargs


# ---------------------------------------------------------------- onnx / tflite


def _layout_from_shape(shape, spec: str) -> tuple[str, int | None, tuple[int, int] | None]:
    """(layout, fixed batch or None, (H, W) or None) from a 4-D input shape with ints or symbolic dims."""
    dims = [d if isinstance(d, (int, np.integer)) and d > 0 else None for d in shape]
    if len(dims) != 4:
        raise FormatError(f"{spec}: the network input has shape {list(shape)}; expected 4-D images (N×3×H×W or N×H×W×3)")
    if dims[1] == 3 and dims[3] != 3:
        layout, hw = "NCHW", (dims[2], dims[3])
    elif dims[3] == 3:
        layout, hw = "NHWC", (dims[1], dims[2])
    elif dims[1] is None and dims[3] is None:
        layout, hw = "NCHW", (dims[2], dims[3])
    else:
        raise FormatError(f"{spec}: cannot tell the channel axis of input shape {list(shape)} (no axis of size 3)")
    fixed = int(dims[0]) if dims[0] else None
    return layout, fixed, (None if None in hw else (int(hw[0]), int(hw[1])))


LANDMARKS_INPUT = "landmarks"
PREPROCESS_METADATA = "arface_repro.preprocess"  # ONNX metadata: the Preprocess key() the exported network expects


def _declared_preprocess(session, path) -> Preprocess:
    """The preprocessing an ONNX file names in its metadata (written by `arface export-onnx`), else GENERIC."""
    import json

    text = session.get_modelmeta().custom_metadata_map.get(PREPROCESS_METADATA)
    if not text:
        return GENERIC
    try:
        fields = json.loads(text)
        return Preprocess(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
    except (ValueError, TypeError, AttributeError, ConfigError) as exc:
        raise FormatError(f"{path}: metadata {PREPROCESS_METADATA!r} is not a valid preprocessing ({exc})") from None


def _preprocess_for(spec: str, base: Preprocess, overrides, hw) -> Preprocess:
    from arface_repro.models.preprocess import for_network

    return for_network(spec, base, overrides, hw)


class OnnxModel(EmbeddingModel):
    kind = "onnx"

    def __init__(self, path: Path, spec: str, preprocess=None, device=None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ConfigError("onnx models need onnxruntime: pip install 'arface_repro[onnx]'") from None
        providers = ["CPUExecutionProvider"]
        if str(device or "").startswith("cuda") or (device is None and "CUDAExecutionProvider" in ort.get_available_providers()):
            providers.insert(0, "CUDAExecutionProvider")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        # no busy-waiting worker threads: on a shared CPU, spinning made runs 2× slower (measured, 2 cores)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")

        onnx_file = read_onnx(path)  # external data checked and inlined: onnxruntime never opens a file itself
        try:
            self.session = ort.InferenceSession(onnx_file.data, sess_options=opts, providers=providers)
        except Exception as exc:
            raise FormatError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:300]})") from None
        inputs = self.session.get_inputs()
        # an optional second input 'landmarks' (N×5×2, network-input pixels): an exported ARFace model
        self.landmarks_name = inputs[1].name if len(inputs) == 2 and inputs[1].name == LANDMARKS_INPUT else None
        self.uses_landmarks = self.landmarks_name is not None
        if len(inputs) != 1 and not self.uses_landmarks:
            raise FormatError(f"{path}: expected one network input (and optionally '{LANDMARKS_INPUT}'), "
                              f"found {[i.name for i in inputs]}")
        inp = inputs[0]
        if inp.type != "tensor(float)":
            raise FormatError(f"{path}: input {inp.name!r} is {inp.type}; only float32 image inputs are supported")
        self.input_name = inp.name
        self.output_name = self.session.get_outputs()[0].name
        self.layout, fixed, hw = _layout_from_shape(inp.shape, spec)
        pre = _preprocess_for(spec, _declared_preprocess(self.session, path), preprocess, hw)
        out_shape = self.session.get_outputs()[0].shape
        d = out_shape[1] if len(out_shape) >= 2 and isinstance(out_shape[1], int) else None
        super().__init__(spec, pre, onnx_file.sha256, fixed_batch=fixed, embedding_size=d)

    def _run(self, x: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        if self.layout == "NCHW":
            x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        feeds = {self.input_name: x}
        if self.landmarks_name is not None:
            feeds[self.landmarks_name] = np.ascontiguousarray(landmarks, dtype=np.float32)
        try:
            return self.session.run([self.output_name], feeds)[0]
        except Exception as exc:
            raise ConfigError(f"{self.spec}: onnxruntime failed on input {x.shape} ({self.layout}): "
                              f"{str(exc).splitlines()[0][:300]}") from None


class TfliteModel(EmbeddingModel):
    kind = "tflite"

    def __init__(self, path: Path, spec: str, preprocess=None, device=None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise ConfigError("tflite models need ai-edge-litert: pip install 'arface_repro[tflite]'") from None
        try:
            self.interpreter = Interpreter(model_path=str(path))
            self.interpreter.allocate_tensors()
        except Exception as exc:
            raise FormatError(f"{path}: not a loadable TFLite model ({str(exc).splitlines()[0][:300]})") from None
        ins = self.interpreter.get_input_details()
        if len(ins) != 1:
            raise FormatError(f"{path}: expected one network input, found {len(ins)}")
        self.inp = ins[0]
        self.out = self.interpreter.get_output_details()[0]
        if self.inp["dtype"] != np.float32:
            raise FormatError(f"{path}: input is {np.dtype(self.inp['dtype']).name}; only float32 inputs are supported")
        sig = [int(v) for v in self.inp.get("shape_signature", self.inp["shape"])]
        layout, fixed, hw = _layout_from_shape(sig, spec)
        if layout != "NHWC":
            raise FormatError(f"{path}: TFLite input shape {sig} is not N×H×W×3")
        self._current = None
        pre = _preprocess_for(spec, GENERIC, preprocess, hw)
        super().__init__(spec, pre, sha256_file(path), fixed_batch=fixed, embedding_size=int(self.out["shape"][-1]))

    def _run(self, x: np.ndarray) -> np.ndarray:
        it = self.interpreter
        if self.fixed_batch is None and self._current != x.shape:
            it.resize_tensor_input(self.inp["index"], list(x.shape))
            it.allocate_tensors()
            self._current = x.shape
        try:
            it.set_tensor(self.inp["index"], np.ascontiguousarray(x, dtype=np.float32))
            it.invoke()
        except Exception as exc:
            raise ConfigError(f"{self.spec}: TFLite failed on input {x.shape}: {str(exc).splitlines()[0][:300]}") from None
        return it.get_tensor(self.out["index"]).copy()


# ---------------------------------------------------------------- entry point


def parse_spec(spec: str) -> tuple[str, str | None, Path]:
    """'torch:ARCH:PATH' / 'torchscript:PATH' / 'onnx:PATH' / 'tflite:PATH' / bare *.onnx|*.tflite -> (kind, arch, path)."""
    kind, sep, rest = spec.partition(":")
    if sep and kind in KINDS:
        if kind == "torch":
            arch, sep2, path = rest.partition(":")
            if not sep2 or not arch or not path:
                raise ConfigError(f"model spec {spec!r}: expected torch:ARCH:PATH (architectures: arface list-models)")
            return kind, arch, Path(path)
        if kind == "arface":  # -> (kind, options text or None, checkpoint file; a run folder's checkpoint_last.pt)
            from arface_repro.models.arface_model import split_spec

            return (kind, *split_spec(rest, spec))
        if not rest:
            raise ConfigError(f"model spec {spec!r}: no file path after '{kind}:'")
        return kind, None, Path(rest)
    if sep and kind and kind not in ("opencv", "caffe") and not Path(spec).exists():
        from arface_repro.models.presets import is_preset

        if not is_preset(kind):  # 'NAME:FILE' with NAME neither a backend nor a preset
            raise ConfigError(_unknown_prefix(spec, kind))
    suffix = Path(spec).suffix.lower()
    if suffix in (".onnx", ".tflite"):
        return suffix[1:], None, Path(spec)
    raise ConfigError(f"model spec {spec!r}: expected torch:ARCH:PATH, torchscript:PATH, onnx:PATH, tflite:PATH, "
                      f"arface:CKPT, opencv:PATH, caffe:NET.prototxt:WEIGHTS.caffemodel, tfgraph:MODEL.pb or PRESET:PATH "
                      f"(presets: protocols/models/*.yaml)")


def _unknown_prefix(spec: str, head: str) -> str:
    """Why 'HEAD:FILE' names no model: HEAD is an architecture (needs torch:), or nothing known."""
    from arface_repro.models import presets
    from arface_repro.models.registry import list_models

    if head in list_models():
        fix = f"torch:{head}:FILE for a PyTorch checkpoint of that architecture"
        near = [p for p in presets.list_presets() if p.startswith(head)]
        if near:
            fix += f", or the preset {near[0]}:FILE"
        return f"model spec {spec!r}: {head!r} is an architecture, not a backend or preset; use {fix}"
    return (f"model spec {spec!r}: {head!r} is not a backend nor a preset (arface list-models); expected "
            f"torch:ARCH:PATH, torchscript:PATH, onnx:PATH, tflite:PATH, arface:CKPT, opencv:PATH, "
            f"caffe:NET.prototxt:WEIGHTS.caffemodel or PRESET:PATH")


def load_model(spec, device=None, preprocess: "Preprocess | str | dict | None" = None,
               trust_torchscript: bool = False) -> EmbeddingModel:
    """An EmbeddingModel from a spec string (see module docstring), an EmbeddingModel (returned as is) or an
    in-memory torch nn.Module. `preprocess` overrides the backend's default (a Preprocess, a dict or a
    'key=value,...' string). `trust_torchscript`: the spec is the user's own (typed on the command line), so a
    `torchscript:` spec may run the program it names; otherwise such a spec is a ConfigError."""
    if isinstance(spec, EmbeddingModel):
        return spec
    check_device(device)  # every backend: a device that does not exist here is refused before loading
    if not isinstance(spec, (str, os.PathLike)):
        import torch

        if isinstance(spec, torch.nn.Module):
            pre = preprocess if isinstance(preprocess, Preprocess) else GENERIC.with_overrides(preprocess)
            return TorchModel.from_module(spec, type(spec).__name__, pre, device)
        raise ConfigError(f"cannot load a model from {type(spec).__name__}")
    spec = str(spec)
    extra = _load_other_kind(spec, device, preprocess)
    if extra is not None:
        return extra
    kind, arch_text, path = parse_spec(spec)
    if not path.exists():
        raise MissingDataError(f"{path}: model file not found (spec {spec!r})")
    check_regular(path, "model file")  # a FIFO or device would block or never end
    if kind == "onnx":
        import importlib.util

        if importlib.util.find_spec("onnxruntime") is None:  # no onnxruntime: run the file with OpenCV
            from arface_repro.models.opencv_backend import OpenCVModel

            return OpenCVModel("onnx", [path], spec, preprocess, device)
        return OnnxModel(path, spec, preprocess, device)
    if kind == "tflite":
        return TfliteModel(path, spec, preprocess, device)
    if kind == "torchscript":
        if not trust_torchscript:
            raise ConfigError(f"model spec {spec!r}: a TorchScript file is a program; it is loaded only from a "
                              f"--model typed on the command line (or with --trust-torchscript), never from "
                              f"DATA.yaml, a preset or a config")
        import torch

        import warnings

        try:
            with warnings.catch_warnings():  # torch 2.9+ marks torch.jit.load deprecated; it still loads
                warnings.simplefilter("ignore", FutureWarning)
                module = torch.jit.load(str(path), map_location="cpu")
        except Exception as exc:
            raise FormatError(f"{path}: not a loadable TorchScript file ({str(exc).splitlines()[0][:300]})") from None
        pre = preprocess if isinstance(preprocess, Preprocess) else GENERIC.with_overrides(preprocess)
        return TorchModel(module, spec, pre, sha256_file(path), device)
    if kind == "arface":
        from arface_repro.models.arface_model import ARFaceModel

        return ARFaceModel.from_checkpoint(path, spec, arch_text, preprocess, device)
    arch, kwargs = _parse_arch(arch_text)
    module = build_torch_model(arch, read_checkpoint(path), path, **kwargs)
    base = default_for_arch(arch, getattr(module, "flavour", None))
    pre = preprocess if isinstance(preprocess, Preprocess) else base.with_overrides(preprocess)
    return TorchModel(module, spec, pre, sha256_file(path), device)


def _load_other_kind(spec: str, device, preprocess) -> "EmbeddingModel | None":
    """`opencv:`, `caffe:`, `tfgraph:` and `PRESET:` specs (modules of their own); None for the kinds above."""
    head, sep, rest = spec.partition(":")
    if not sep or head in KINDS:
        return None
    if head == "opencv":
        from arface_repro.models.opencv_backend import load_opencv_model

        return load_opencv_model(spec, rest, preprocess, device)
    if head == "caffe":
        from arface_repro.models.opencv_backend import load_caffe_spec

        return load_caffe_spec(spec, rest, preprocess, device)
    if head == "tfgraph":
        from arface_repro.models.opencv_backend import load_tfgraph_spec

        return load_tfgraph_spec(spec, rest, preprocess, device)
    from arface_repro.models import presets

    if presets.is_preset(head):
        return presets.load_preset_model(spec, device=device, preprocess=preprocess)
    return None


def file_sha256_of(spec) -> str:
    """Hash of the file behind a spec string (without loading the network)."""
    return sha256_file(parse_spec(str(spec))[2])


__all__ = ["EmbeddingModel", "TorchModel", "OnnxModel", "TfliteModel", "load_model", "parse_spec", "read_checkpoint",
           "build_torch_model", "strip_prefixes", "state_dict_sha256", "sha256_bytes"]
