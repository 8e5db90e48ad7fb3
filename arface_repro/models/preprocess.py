"""Input preprocessing of an embedding model: crop fitting, colour order, normalisation (numpy only).

Every backend's `embed(batch)` takes uint8 N×H×W×3 RGB images and applies its `Preprocess` itself:
1. fit the crop to the network's input size: `pad` (default) adds zero (black) rows/columns equally on both
   sides, so a 112×96 SphereFace crop becomes the 112×112 ArcFace crop (8 columns each side, the two templates
   differ by exactly 8 px in x); `resize` uses cv2.resize (bilinear); `none` demands the exact size.
2. reorder channels to `color` (RGB or BGR),
3. normalise, float32, N×H×W×3 (backends transpose to NCHW where the network wants it):
   `norm=channel` (default): (x − mean) / std per channel;
   `norm=prewhiten`: facenet's per-image standardisation (x − mean(x)) / max(std(x), 1/√N) over all
   N = H·W·3 values of each image, computed in float64 like facenet's numpy `prewhiten` (mean/std unused).

Spec strings for overrides: "color=BGR,mean=127.5,std=127.5,size=112x112,fit=pad,norm=channel" (mean/std
also as a 3-tuple "mean=123.7/116.3/103.5"), and "preset=NAME" for a named convention (PRESETS below;
fields written after it override it, e.g. "preset=facenet,norm=prewhiten"). The `key()` is part of the
embedding cache key.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

import numpy as np

from arface_repro.errors import ConfigError

FITS = ("pad", "resize", "none")
NORMS = ("channel", "prewhiten")
FIELDS = ("color", "mean", "std", "size", "fit", "norm")
MAX_SIZE = 4096  # network input side in pixels: larger is no face model, and would only exhaust memory


@dataclass(frozen=True)
class Preprocess:
    color: str = "RGB"
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (128.0, 128.0, 128.0)
    size: tuple[int, int] = (112, 112)  # (height, width) the network takes
    fit: str = "pad"
    norm: str = "channel"

    def __post_init__(self) -> None:
        if self.color not in ("RGB", "BGR"):
            raise ConfigError(f"preprocess color must be RGB or BGR, got {self.color!r}")
        if self.fit not in FITS:
            raise ConfigError(f"preprocess fit must be one of {', '.join(FITS)}, got {self.fit!r}")
        if self.norm not in NORMS:
            raise ConfigError(f"preprocess norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        object.__setattr__(self, "mean", _triple(self.mean, "mean"))
        object.__setattr__(self, "std", _triple(self.std, "std"))
        if any(s == 0 for s in self.std):
            raise ConfigError("preprocess std must be non-zero")
        _check_float32_range(self.mean, self.std)
        try:
            size = tuple(int(v) for v in self.size)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"preprocess size must be (height, width) integers, got {self.size!r}") from None
        if len(size) != 2 or min(size) <= 0 or max(size) > MAX_SIZE:
            raise ConfigError(f"preprocess size must be (height, width) in 1..{MAX_SIZE}, got {self.size!r}")
        object.__setattr__(self, "size", size)

    def key(self) -> str:
        """Canonical JSON text of the settings (stored with features and used in cache keys).

        `norm` appears only when it is not the default, so keys written before it existed stay valid."""
        d = asdict(self)
        if d["norm"] == "channel":
            del d["norm"]
        return json.dumps(d, sort_keys=True)

    def with_overrides(self, overrides: str | dict | None) -> Preprocess:
        """A copy with fields from a spec string ('std=127.5,color=BGR', 'preset=facenet') or dict replaced."""
        return self if not overrides else replace(self, **override_fields(overrides))

    def fit_image(self, img: np.ndarray, name: str = "image") -> np.ndarray:
        """One uint8 H×W×3 image fitted to `size` (see module docstring); a size it cannot fit is a ConfigError."""
        return self.fit_batch(img[None], name)[0]

    def fit_batch(self, batch: np.ndarray, name: str = "batch") -> np.ndarray:
        check_batch(batch, name)
        h, w = batch.shape[1:3]
        th, tw = self.size
        if (h, w) == (th, tw):
            return batch
        if self.fit == "pad":
            dh, dw = th - h, tw - w
            if dh < 0 or dw < 0 or dh % 2 or dw % 2:
                raise ConfigError(
                    f"{name}: images are {h}×{w} but the model takes {th}×{tw}; 'pad' fitting only adds an equal "
                    f"number of zero rows/columns on both sides (use preprocess fit=resize, or crops of the right size)")
            return np.pad(batch, ((0, 0), (dh // 2, dh // 2), (dw // 2, dw // 2), (0, 0)))
        if self.fit == "resize":
            import cv2

            return np.stack([cv2.resize(im, (tw, th), interpolation=cv2.INTER_LINEAR) for im in batch])
        raise ConfigError(f"{name}: images are {h}×{w} but the model takes {th}×{tw} (preprocess fit=none)")

    def __call__(self, batch: np.ndarray, name: str = "batch") -> np.ndarray:
        """uint8 N×H×W×3 RGB -> float32 N×h×w×3 network input (fitted, reordered, normalised)."""
        x = self.fit_batch(batch, name)
        if self.color == "BGR":
            x = x[..., ::-1]
        if self.norm == "prewhiten":
            return prewhiten(x)
        x = x.astype(np.float32)
        x -= np.asarray(self.mean, dtype=np.float32)
        x /= np.asarray(self.std, dtype=np.float32)
        return x


def prewhiten(batch: np.ndarray) -> np.ndarray:
    """facenet's per-image standardisation of uint8 N×H×W×C images -> float32.

    Each image: (x − mean) / max(std, 1/√N) with mean, std (ddof 0) over its N = H·W·C values, in float64
    as facenet's numpy `prewhiten` computes it (TensorFlow's per_image_standardization is the same formula)."""
    x = batch.astype(np.float64)
    n = x[0].size if len(x) else 1
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    std = x.std(axis=(1, 2, 3), keepdims=True)
    return ((x - mean) / np.maximum(std, 1.0 / np.sqrt(n))).astype(np.float32)


def check_batch(batch: np.ndarray, name: str = "batch") -> None:
    if not isinstance(batch, np.ndarray) or batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[3] != 3:
        desc = f"{batch.dtype} {batch.shape}" if isinstance(batch, np.ndarray) else type(batch).__name__
        raise ConfigError(f"{name}: expected uint8 N×H×W×3 RGB images, got {desc}")


_F32_MAX = float(np.finfo(np.float32).max)   # Python floats: comparing with a numpy float32 would cast (and warn)
_F32_TINY = float(np.finfo(np.float32).tiny)


def _check_float32_range(mean, std) -> None:
    """The network input is float32: mean and std must be float32 numbers, and (x − mean) / std over the pixel
    values 0..255 must stay finite with a step 1/|std| in float32's normal range. Otherwise (std=1e39 is inf in
    float32) every image would silently become the same input (all zeros) or lose its values to underflow."""
    for what, vals in (("mean", mean), ("std", std)):
        for v in vals:
            if abs(v) > _F32_MAX:
                raise ConfigError(f"preprocess {what}={v:g} is outside float32's range (|x| <= {_F32_MAX:.4g}); the "
                                  f"network input is float32")
    for m, s in zip(mean, std):
        step = 1.0 / abs(s)
        top = max(abs(0.0 - m), abs(255.0 - m)) * step
        if step < _F32_TINY or top > _F32_MAX:
            raise ConfigError(f"preprocess std={s:g} (mean={m:g}) maps pixel values 0..255 outside float32's normal range "
                              f"(step 1/std = {step:.3g}, largest value {top:.3g}); every image would become the same "
                              f"input")


def _triple(v, what: str) -> tuple[float, float, float]:
    try:
        t = (float(v),) * 3 if isinstance(v, (int, float)) else tuple(float(x) for x in v)
    except (TypeError, ValueError):
        raise ConfigError(f"preprocess {what} must be one number or three, got {v!r}") from None
    if len(t) == 1:
        t = t * 3
    if len(t) != 3 or not all(np.isfinite(t)):
        raise ConfigError(f"preprocess {what} must be one finite number or three, got {v!r}")
    return t


def parse_overrides(text: str) -> dict:
    """'color=BGR,mean=127.5,std=128,size=112x112,fit=pad' -> dict of typed fields (in the order written;
    'preset=NAME' is kept as a 'preset' entry, see `override_fields`)."""
    out: dict = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        if "=" not in item:
            raise ConfigError(f"preprocess override {item!r} is not key=value (in {text!r})")
        k, v = (s.strip() for s in item.split("=", 1))
        if k in out:
            raise ConfigError(f"preprocess field {k!r} given twice (in {text!r})")
        try:
            if k in ("mean", "std"):
                out[k] = tuple(float(x) for x in v.split("/"))
            elif k == "size":
                hw = v.lower().split("x")
                if len(hw) > 2:
                    raise ValueError
                out[k] = (int(hw[0]), int(hw[-1]))
            elif k == "color":
                out[k] = v.upper()
            else:
                out[k] = v
        except ValueError:
            raise ConfigError(f"preprocess override {item!r}: bad value (in {text!r})") from None
    return out


def override_fields(overrides: str | dict | None) -> dict:
    """The Preprocess fields an override string/dict sets, a 'preset' expanded in place (later fields win).

    Unknown fields and unknown presets are ConfigErrors listing the known ones."""
    if not overrides:
        return {}
    items = parse_overrides(overrides) if isinstance(overrides, str) else dict(overrides)
    out: dict = {}
    for k, v in items.items():
        if k == "preset":
            if v not in PRESETS:
                raise ConfigError(f"unknown preprocess preset {v!r}; known: {', '.join(PRESETS)}")
            out.update(PRESETS[v][1])
        elif k in FIELDS:
            out[k] = v
        else:
            raise ConfigError(f"unknown preprocess field(s) {[k]}; known: {', '.join(FIELDS)}, preset")
    return out


def resolve(base: Preprocess, overrides: Preprocess | str | dict | None) -> tuple[Preprocess, set]:
    """(preprocess, names of the fields the caller set explicitly): a Preprocess object sets them all."""
    if isinstance(overrides, Preprocess):
        return overrides, set(FIELDS)
    fields = override_fields(overrides)
    return replace(base, **fields), set(fields)


def for_network(spec: str, base: Preprocess, overrides, hw, source=None) -> Preprocess:
    """The preprocessing of a network file: `base`, set to the input size `hw` the file declares (None when it
    declares none), then the caller's `overrides`. A size the file does not declare must be given (`source`, the
    file to name in the error; None = the size is optional); one that disagrees with the file's is an error."""
    if hw is not None:
        base = base.with_overrides({"size": hw})
    pre, given = resolve(base, overrides)
    if hw is None and source is not None and "size" not in given:
        raise ConfigError(f"{spec}: {source} does not declare its input size; give it with the preprocessing, "
                          f"e.g. --preprocess size=160x160")
    if hw is not None and pre.size != tuple(hw):
        raise ConfigError(f"{spec}: the network takes {hw[0]}×{hw[1]} inputs but the preprocessing asks for "
                          f"{pre.size[0]}×{pre.size[1]}")
    return pre


# Named conventions for `preset=NAME` (description, fields). The normalisations: `fixed` (x − 127.5)/128
# (facenet's fixed_image_standardization, MobileFaceNet, SphereFace), `arcface` (x/255 − 0.5)/0.5 =
# (x − 127.5)/127.5 (insightface, AdaFace), `prewhiten` (facenet's per-image standardisation).
_FIXED = {"mean": (127.5,) * 3, "std": (128.0,) * 3, "norm": "channel"}
_ARCFACE = {"mean": (127.5,) * 3, "std": (127.5,) * 3, "norm": "channel"}
PRESETS: dict[str, tuple[str, dict]] = {
    "fixed": ("(x − 127.5)/128", _FIXED),
    "arcface": ("(x/255 − 0.5)/0.5 = (x − 127.5)/127.5", _ARCFACE),
    "prewhiten": ("per image (x − mean)/max(std, 1/√N)", {"norm": "prewhiten"}),
    "facenet": ("facenet 2018 models: 160×160 RGB, (x − 127.5)/128",
                {"color": "RGB", "size": (160, 160), **_FIXED}),
    "facenet-prewhiten": ("facenet models with per-image prewhitening: 160×160 RGB",
                          {"color": "RGB", "size": (160, 160), "norm": "prewhiten"}),
    "insightface": ("insightface arcface_torch: 112×112 RGB, (x/255 − 0.5)/0.5",
                    {"color": "RGB", "size": (112, 112), **_ARCFACE}),
    "adaface": ("AdaFace: 112×112 BGR, (x/255 − 0.5)/0.5", {"color": "BGR", "size": (112, 112), **_ARCFACE}),
    "sphereface": ("SphereFace/CosFace/AM-Softmax Caffe releases: 112×96 BGR, (x − 127.5)/128",
                   {"color": "BGR", "size": (112, 96), **_FIXED}),
    "mobilefacenet": ("MobileFaceNet: 112×112 RGB, (x − 127.5)/128", {"color": "RGB", "size": (112, 112), **_FIXED}),
}

# Defaults per architecture of our registry (torch:ARCH:PATH). MobileFaceNet: (x − 127.5)/128 as the paper's
# code and the shared TFLite model; IR-ResNet: insightface arcface_torch's (x/255 − 0.5)/0.5 = (x − 127.5)/127.5.
# IR / IR-SE (arface_repro.backbones.ir): each code base's own convention, by flavour: face.evoLVe RGB, TreB1eN and
# AdaFace BGR, all (x/255 − 0.5)/0.5. facenet-pytorch's Inception-ResNet-v1: 160×160, (x − 127.5)/128 (its
# fixed_image_standardization).
MOBILEFACENET = Preprocess()
INSIGHTFACE = Preprocess(std=(127.5, 127.5, 127.5))
EVOLVE = Preprocess(std=(127.5, 127.5, 127.5))
TREB1EN = Preprocess(color="BGR", std=(127.5, 127.5, 127.5))
ADAFACE = Preprocess(color="BGR", std=(127.5, 127.5, 127.5))
FACENET = Preprocess(size=(160, 160))
GENERIC = Preprocess()  # exported files (ONNX/TFLite/TorchScript) unless overridden or named in the file
_IR_FLAVOURS = {"evolve": EVOLVE, "treb1en": TREB1EN, "adaface": ADAFACE}


def default_for_arch(arch: str, flavour: str | None = None) -> Preprocess:
    """The input convention of a registry architecture (`flavour`: the IR family's code base, default evolve)."""
    import re

    if arch.startswith("inception_resnet"):
        return FACENET
    if arch.startswith("iresnet"):
        return INSIGHTFACE
    if re.fullmatch(r"ir(_se)?\d+", arch):
        return _IR_FLAVOURS.get(flavour or "evolve", EVOLVE)
    return MOBILEFACENET
