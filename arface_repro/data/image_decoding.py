"""How every image reader of the package decodes a file: 3-channel colour, the pixel grid as stored.

EXIF orientation is IGNORED everywhere (OpenCV's `IMREAD_IGNORE_ORIENTATION`). OpenCV's `imread` and `imdecode`
apply the tag by default; PIL's `Image.open` (used by most PyTorch face pipelines) and the RecordIO payloads of
insightface-style training sets give the stored grid. A face crop is aligned in its stored grid (landmarks,
the 112×112 template, the `.rec` records all refer to it), so a tag rotating it would silently turn the face by
90° or 180° for one reader and not another. Every reader (image folders, `.rec`/`.bin` payloads, `embed`,
`align`, `pack-rec`, the LFW-scale loader) therefore decodes with `decode_bgr` (flags `IMREAD_FLAGS()`), and a
photo that needs its tag applied must be rotated before it enters the package.

`decode_bgr` checks the header first (`io.image_header`: dimensions and format before any pixel is
allocated). The decoder is OpenCV's, so this module sits in `data/` above the numpy-only file formats of `io/`.
"""

from __future__ import annotations

import os

import numpy as np

from arface_repro.errors import FormatError
from arface_repro.io.image_header import check_image_header
from arface_repro.io.insightface_bin import bin_image_names, load_bin


def IMREAD_FLAGS() -> int:  # noqa: N802 - read as a constant
    """`cv2.imread` / `cv2.imdecode` flags: BGR colour, EXIF orientation ignored."""
    import cv2  # heavy: imported where an image is decoded, not when the package is

    return cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


def decode_bgr(data: bytes, where: str) -> np.ndarray:
    """Encoded image bytes -> BGR uint8 H×W×3 (`IMREAD_FLAGS`: colour, EXIF orientation ignored), the header
    checked first (`io.image_header`). A decoder error (`cv2.error`) is a FormatError naming the image."""
    import cv2

    check_image_header(data, where)
    try:
        img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), IMREAD_FLAGS())
    except cv2.error as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise FormatError(f"{where}: not a decodable image (OpenCV: {msg[:200]}; {len(data)} bytes)") from None
    if img is None:
        raise FormatError(f"{where}: not a decodable image ({len(data)} bytes)")
    return img


def decode_rgb_images(encoded: list[bytes], where: str) -> list[np.ndarray]:
    """Decode encoded images to RGB uint8 arrays; an undecodable one is a FormatError naming `where` and its index."""
    import cv2

    return [cv2.cvtColor(decode_bgr(b, f"{where}: image record {i}"), cv2.COLOR_BGR2RGB)  # header checked first
            for i, b in enumerate(encoded)]


def decode_bin_images(path: str | os.PathLike) -> tuple[list[str], list[np.ndarray]]:
    """Decode every image of an insightface .bin set to RGB uint8 arrays (names as in `io.insightface_bin.bin_pairs`)."""
    images, _ = load_bin(path)
    return bin_image_names(len(images)), decode_rgb_images(images, str(path))
