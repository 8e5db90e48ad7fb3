"""Detector-box crops as facenet's `align_dataset_mtcnn.py` makes them (no landmark alignment).

facenet takes the MTCNN box, grows it by margin/2 pixels on each side, clips it to the image, cuts it out
and resizes it to S×S with `scipy.misc.imresize(..., 'bilinear')`, i.e. PIL's bilinear resampling (which
averages over the source pixels when shrinking). Its arithmetic, reproduced here:

    bb = int32([max(det[0] − m/2, 0), max(det[1] − m/2, 0), min(det[2] + m/2, W), min(det[3] + m/2, H)])
    crop = img[bb[1]:bb[3], bb[0]:bb[2]]

where `det` is its detector's box in the MTCNN reference's 1-based inclusive coordinates. This package's
MTCNN returns 0-based pixel edges (x1 − 1, y1 − 1, x2, y2 of that box), so det = box + (1, 1, 0, 0); the
int32 conversion truncates (the values are ≥ 0, so it floors).

Landmarks move with the crop: a point p (pixel-centre coordinates) becomes ((p − (x0, y0)) + 0.5) · S/size − 0.5,
the mapping of a resampling that aligns pixel centres (PIL's and OpenCV's).
"""

from __future__ import annotations

import numpy as np

from arface_repro.errors import ConfigError


def facenet_crop_box(box, margin: float, image_shape) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) in pixels (x1, y1 exclusive) of facenet's crop for a 0-based detector box."""
    if margin < 0:
        raise ConfigError(f"crop margin must be >= 0, got {margin}")
    h, w = int(image_shape[0]), int(image_shape[1])
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64)[:4])
    det = (x1 + 1.0, y1 + 1.0, x2, y2)  # facenet's (1-based) box
    half = margin / 2
    bb = (max(det[0] - half, 0.0), max(det[1] - half, 0.0), min(det[2] + half, float(w)), min(det[3] + half, float(h)))
    return tuple(int(np.trunc(v)) for v in bb)  # type: ignore[return-value]


def resize_bilinear(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 H×W×3 -> (height, width) with PIL's bilinear filter (scipy.misc.imresize 'bilinear')."""
    from PIL import Image

    resample = getattr(Image, "Resampling", Image).BILINEAR
    h, w = size
    return np.asarray(Image.fromarray(np.ascontiguousarray(img)).resize((int(w), int(h)), resample), dtype=np.uint8)


def box_crop(img: np.ndarray, box, margin: float, size: tuple[int, int], landmarks=None):
    """facenet-style crop of one face: (crop uint8 size×3, crop box (x0, y0, x1, y1), landmarks in crop pixels).

    `landmarks` (5×2, source pixels) may be None; an empty crop box is a ConfigError."""
    x0, y0, x1, y1 = facenet_crop_box(box, margin, img.shape)
    if x1 <= x0 or y1 <= y0:
        raise ConfigError(f"empty crop box {(x0, y0, x1, y1)} for detector box {np.round(box, 1).tolist()}")
    crop = resize_bilinear(img[y0:y1, x0:x1], size)
    pts = None
    if landmarks is not None:
        scale = np.array([size[1] / (x1 - x0), size[0] / (y1 - y0)])
        pts = ((np.asarray(landmarks, np.float64) - (x0, y0) + 0.5) * scale - 0.5).astype(np.float32)
    return crop, (x0, y0, x1, y1), pts
