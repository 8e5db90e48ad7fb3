"""Writing face training sets as insightface-style `.rec`/`.idx` (the layout `RecFaceDataset` reads).

Layout (as insightface's face2rec): record 0 = IRHeader flag 2, label [first, end) with first = images + 1
and end = first + identities; records 1..first-1 = images in class order (label = class id, id = key);
records first..end-1 = one per identity with label [start, end) of its image keys. An image record with
landmarks uses the multi-label header `[label, x1, y1, ..., x5, y5]` (flag 11; see
`arface_repro.data.face_datasets`). Both files appear only when the writer closes without error.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from arface_repro.data.face_datasets import decode_image, pack_image_record
from arface_repro.errors import FormatError
from arface_repro.io.recordio import IndexedRecordWriter, IRHeader, pack
from arface_repro.utils.outputs import Output, check_outputs


def jpeg_payload(data: bytes, where: str, reencode: bool = False, quality: int = 95) -> tuple[bytes, bool, tuple[int, int]]:
    """(JPEG bytes, re-encoded?, (height, width)): decodes once to check the image (FormatError naming `where`);
    JPEG bytes are kept as they are unless `reencode`, other formats are always re-encoded."""
    import cv2

    img = decode_image(data, where)
    if reencode or data[:2] != b"\xff\xd8":
        ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise FormatError(f"{where}: JPEG encoding failed")
        return buf.tobytes(), True, img.shape[:2]
    return data, False, img.shape[:2]


def check_output_prefix(out_prefix: str | os.PathLike, suffixes: Iterable[str],
                        inputs: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """The output files OUT_PREFIX+suffix, checked before any work (`arface_repro.utils.outputs`): none is a
    folder, an input or inside an input folder, and their folder exists (or can be made) and is writable."""
    outs = [Path(f"{out_prefix}{s}") for s in suffixes]
    check_outputs([Output(o, "OUT_PREFIX") for o in outs], inputs)
    return outs


class FaceRecWriter:
    """Write `num_images` image records in class order, then the identity records; use as a context manager.

    `add(label, payload, landmarks=None)` takes the images sorted by label (labels 0..num_classes-1, each class
    contiguous). Leaving the block with an exception, or with a count that differs from `num_images`, writes nothing.
    """

    def __init__(self, out_prefix: str | os.PathLike, num_images: int, num_classes: int):
        self.out_prefix = str(out_prefix)
        self.num_images, self.num_classes = int(num_images), int(num_classes)
        self.first = self.num_images + 1
        self.ranges = np.full((self.num_classes, 2), -1, dtype=np.int64)
        self.next_key = 1
        self.with_landmarks = 0
        self._last_label = -1
        self._writer = IndexedRecordWriter(f"{self.out_prefix}.idx", f"{self.out_prefix}.rec")
        self._writer.write_idx(0, pack(IRHeader(2, [self.first, self.first + self.num_classes], 0, 0), b""))

    def add(self, label: int, payload: bytes, landmarks: np.ndarray | None = None) -> int:
        label, key = int(label), self.next_key
        if key >= self.first:
            raise ValueError(f"more than the announced {self.num_images} images")
        if not 0 <= label < self.num_classes:
            raise ValueError(f"label {label} outside 0..{self.num_classes - 1}")
        if label < self._last_label:
            raise ValueError(f"images must come sorted by label: label {label} after label {self._last_label}")
        if label != self._last_label:
            self.ranges[label, 0] = key
            self._last_label = label
        self.ranges[label, 1] = key + 1
        self._writer.write_idx(key, pack_image_record(label, key, payload, landmarks))
        self.with_landmarks += landmarks is not None
        self.next_key += 1
        return key

    def close(self) -> None:
        if self.next_key != self.first:
            self._writer.abort()
            raise ValueError(f"{self.next_key - 1} images written, {self.num_images} announced")
        if (self.ranges[:, 0] < 0).any():
            self._writer.abort()
            raise ValueError(f"class {int(np.flatnonzero(self.ranges[:, 0] < 0)[0])} has no image")
        for c, (start, stop) in enumerate(self.ranges.tolist()):
            key = self.first + c
            self._writer.write_idx(key, pack(IRHeader(2, [start, stop], key, 0), b""))
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if et is None:
            self.close()
        else:
            self._writer.abort()
        return False
