"""How every image reader of the package decodes a file: 3-channel colour, the pixel grid as stored.

EXIF orientation is IGNORED everywhere (OpenCV's `IMREAD_IGNORE_ORIENTATION`). OpenCV's `imread` and `imdecode`
apply the tag by default; PIL's `Image.open` (used by most PyTorch face pipelines) and the RecordIO payloads of
insightface-style training sets give the stored grid. A face crop is aligned in its stored grid (landmarks,
the 112×112 template, the `.rec` records all refer to it), so a tag rotating it would silently turn the face by
90° or 180° for one reader and not another. Every reader (image folders, `.rec`/`.bin` payloads, `embed`,
`align`, `pack-rec`, the LFW-scale loader) therefore uses `IMREAD_FLAGS()`, and a photo that needs its tag
applied must be rotated before it enters the package.
"""

from __future__ import annotations


def IMREAD_FLAGS() -> int:  # noqa: N802 - read as a constant
    """`cv2.imread` / `cv2.imdecode` flags: BGR colour, EXIF orientation ignored."""
    import cv2

    return cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
