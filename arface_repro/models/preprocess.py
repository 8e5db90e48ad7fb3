"""Input preprocessing of an embedding model: crop fitting, colour order, normalisation (numpy only).

Every backend's `embed(batch)` takes uint8 N×H×W×3 RGB images and applies its `Preprocess` itself:
1. fit the crop to the network's input size: `pad` (default) adds zero (black) rows/columns equally on both
   sides, so a 112×96 SphereFace crop becomes the 112×112 ArcFace crop (8 columns each side, the two templates
   differ by exactly 8 px in x); `resize` uses cv2.resize (bilinear); `none` demands the exact size.
2. reorder channels to `color` (RGB or BGR),
3. (x − mean) / std per channel, float32, N×H×W×3 (backends transpose to NCHW where the network wants it).

Spec strings for overrides: "color=BGR,mean=127.5,std=127.5,size=112x112,fit=pad" (mean/std also as a
3-tuple "mean=123.7/116.3/103.5"). The `key()` is part of the embedding cache key.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

import numpy as np

from arface_repro.errors import ConfigError

FITS = ("pad", "resize", "none")


@dataclass(frozen=True)
class Preprocess:
    color: str = "RGB"
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (128.0, 128.0, 128.0)
    size: tuple[int, int] = (112, 112)  # (height, width) the network takes
    fit: str = "pad"

    def __post_init__(self) -> None:
        if self.color not in ("RGB", "BGR"):
            raise ConfigError(f"preprocess color must be RGB or BGR, got {self.color!r}")
        if self.fit not in FITS:
            raise ConfigError(f"preprocess fit must be one of {', '.join(FITS)}, got {self.fit!r}")
        object.__setattr__(self, "mean", _triple(self.mean, "mean"))
        object.__setattr__(self, "std", _triple(self.std, "std"))
        if any(s == 0 for s in self.std):
            raise ConfigError("preprocess std must be non-zero")
        size = tuple(int(v) for v in self.size)
        if len(size) != 2 or min(size) <= 0:
            raise ConfigError(f"preprocess size must be (height, width) > 0, got {self.size!r}")
        object.__setattr__(self, "size", size)

    def key(self) -> str:
        """Canonical JSON text of the settings (stored with features and used in cache keys)."""
        return json.dumps(asdict(self), sort_keys=True)

    def with_overrides(self, overrides: "str | dict | None") -> "Preprocess":
        """A copy with fields from a spec string ('std=127.5,color=BGR') or dict replaced."""
        if not overrides:
            return self
        fields = parse_overrides(overrides) if isinstance(overrides, str) else dict(overrides)
        unknown = set(fields) - {"color", "mean", "std", "size", "fit"}
        if unknown:
            raise ConfigError(f"unknown preprocess field(s) {sorted(unknown)}; known: color, mean, std, size, fit")
        return replace(self, **fields)

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
        x = x.astype(np.float32)
        x -= np.asarray(self.mean, dtype=np.float32)
        x /= np.asarray(self.std, dtype=np.float32)
        return x


def check_batch(batch: np.ndarray, name: str = "batch") -> None:
    if not isinstance(batch, np.ndarray) or batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[3] != 3:
        desc = f"{batch.dtype} {batch.shape}" if isinstance(batch, np.ndarray) else type(batch).__name__
        raise ConfigError(f"{name}: expected uint8 N×H×W×3 RGB images, got {desc}")


def _triple(v, what: str) -> tuple[float, float, float]:
    if isinstance(v, (int, float)):
        return (float(v),) * 3
    t = tuple(float(x) for x in v)
    if len(t) == 1:
        t = t * 3
    if len(t) != 3:
        raise ConfigError(f"preprocess {what} must be one number or three, got {v!r}")
    return t


def parse_overrides(text: str) -> dict:
    """'color=BGR,mean=127.5,std=128,size=112x112,fit=pad' -> dict of typed fields."""
    out: dict = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        if "=" not in item:
            raise ConfigError(f"preprocess override {item!r} is not key=value (in {text!r})")
        k, v = (s.strip() for s in item.split("=", 1))
        try:
            if k in ("mean", "std"):
                out[k] = tuple(float(x) for x in v.split("/"))
            elif k == "size":
                hw = v.lower().split("x")
                out[k] = (int(hw[0]), int(hw[-1]))
            elif k == "color":
                out[k] = v.upper()
            else:
                out[k] = v
        except ValueError:
            raise ConfigError(f"preprocess override {item!r}: bad value (in {text!r})") from None
    return out


# Defaults per architecture of our registry (torch:ARCH:PATH). MobileFaceNet: (x − 127.5)/128 as the paper's
# code and the shared TFLite model; IR-ResNet: insightface arcface_torch's (x/255 − 0.5)/0.5 = (x − 127.5)/127.5.
# IR / IR-SE (arface_repro.models.ir): each code base's own convention, by flavour: face.evoLVe RGB, TreB1eN and
# AdaFace BGR, all (x/255 − 0.5)/0.5.
MOBILEFACENET = Preprocess()
INSIGHTFACE = Preprocess(std=(127.5, 127.5, 127.5))
EVOLVE = Preprocess(std=(127.5, 127.5, 127.5))
TREB1EN = Preprocess(color="BGR", std=(127.5, 127.5, 127.5))
ADAFACE = Preprocess(color="BGR", std=(127.5, 127.5, 127.5))
GENERIC = Preprocess()  # exported files (ONNX/TFLite/TorchScript) unless overridden or named in the file
_IR_FLAVOURS = {"evolve": EVOLVE, "treb1en": TREB1EN, "adaface": ADAFACE}


def default_for_arch(arch: str, flavour: str | None = None) -> Preprocess:
    """The input convention of a registry architecture (`flavour`: the IR family's code base, default evolve)."""
    import re

    if arch.startswith("iresnet"):
        return INSIGHTFACE
    if re.fullmatch(r"ir(_se)?\d+", arch):
        return _IR_FLAVOURS.get(flavour or "evolve", EVOLVE)
    return MOBILEFACENET
