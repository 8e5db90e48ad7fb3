"""Face training sets as map-style torch Datasets: insightface `.rec` files and image folders.

Every item is `(image, label, landmarks)`: image np.uint8 H×W×3 RGB, label int (class id), landmarks
np.float32 (5, 2) in the image's pixel coordinates (left eye, right eye, nose, left/right mouth corner).
Pre-aligned images (a `.rec`, or a folder without a landmarks file) get the alignment template for their
size (112×112: ArcFace; 112×96: SphereFace; other sizes: the ArcFace one scaled). An optional `transform`
is called with the whole tuple and its result is returned.

Landmarks in a `.rec` (written by `arface pack-rec --landmarks` and `arface make-subset`): an image record's
IRHeader uses mxnet's multi-label form with flag = 11 and the 11 float32 values `label, x1, y1, ..., x5, y5`
(class id first, then the 5 aligned points in crop pixels). mxnet and insightface readers take `label[0]` as
the class, so such files still train with the reference code. Records with any other header get the template.

Landmarks file (written by `arface align`): UTF-8 text, one image per line,
`relpath x1 y1 x2 y2 x3 y3 x4 y4 x5 y5` (whitespace separated, relpath relative to the folder with '/',
may contain spaces since the 10 numbers are split from the right); blank lines and lines starting with '#'
are ignored.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from arface_repro.data.alignment import ARCFACE_112, SPHEREFACE_112x96
from arface_repro.data.image_decoding import decode_bgr
from arface_repro.errors import FormatError, MissingDataError
from arface_repro.io.image_header import MAX_IMAGE_FILE_BYTES
from arface_repro.io.recordio import IndexedRecordReader, IRHeader, pack, unpack
from arface_repro.utils.atomic import atomic_open
from arface_repro.utils.input_files import check_regular, check_size, read_capped
from arface_repro.utils.textfile import read_text

try:  # torch is only needed to subclass Dataset (ConcatDataset via `+`); the classes work without it
    from torch.utils.data import Dataset as _Base
except ImportError:  # pragma: no cover
    _Base = object  # type: ignore[assignment,misc]  # the same name, a plain base class without torch

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
LANDMARK_FLAG = 11  # IRHeader flag of an image record carrying label + 5 landmarks (11 float32 values)

log = logging.getLogger(__name__)


def pack_image_record(label: int, key: int, payload: bytes, landmarks: np.ndarray | None = None) -> bytes:
    """An insightface image record: IRHeader(flag 0, label) or, with landmarks, flag 11 and
    [label, x1, y1, ..., x5, y5] as float32 (the class id is exactly representable up to 2^24)."""
    if landmarks is None:
        return pack(IRHeader(0, float(label), int(key), 0), payload)
    pts = np.asarray(landmarks, dtype=np.float64).reshape(-1)
    if pts.size != 10 or not np.all(np.isfinite(pts)):
        raise FormatError(f"record {key}: landmarks must be 10 finite numbers, got {pts.tolist()}")
    if not 0 <= int(label) < 2**24:
        raise FormatError(f"record {key}: class id {label} does not fit a float32 label exactly")
    return pack(IRHeader(LANDMARK_FLAG, np.r_[float(label), pts].astype(np.float32), int(key), 0), payload)


def header_landmarks(header, where: str = "record") -> np.ndarray | None:
    """The (5, 2) float32 landmarks of an image record header (flag 11), or None when it has none."""
    if header.flag != LANDMARK_FLAG:
        return None
    pts = np.asarray(header.label[1:], dtype=np.float32).reshape(5, 2)
    if not np.all(np.isfinite(pts)):
        raise FormatError(f"{where}: landmarks in the record header are not finite: {pts.reshape(-1).tolist()}")
    return pts


def decode_image(data: bytes, where: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes (JPEG/PNG/...) to RGB uint8 H×W×3; FormatError naming `where` if not (the
    header's dimensions are checked before decoding: `io.image_header`)."""
    return np.ascontiguousarray(decode_bgr(data, where)[:, :, ::-1])


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file (a regular file of at most MAX_IMAGE_FILE_BYTES) as RGB uint8 H×W×3."""
    return decode_image(read_capped(path, "image", MAX_IMAGE_FILE_BYTES), str(path))


def template_landmarks(height: int, width: int) -> np.ndarray:
    """The 5 template points of a pre-aligned crop of this size (float32 (5, 2))."""
    if (height, width) == (112, 96):
        return SPHEREFACE_112x96.copy()
    return (ARCFACE_112 * np.array([width / 112.0, height / 112.0], np.float32)).astype(np.float32)


def read_landmarks_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Parse a landmarks file into {relpath: float32 (5, 2)}; malformed lines raise FormatError."""

    out: dict[str, np.ndarray] = {}
    for lineno, line in enumerate(read_text(path, "landmarks file").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        fields = text.rsplit(None, 10)
        try:
            if len(fields) != 11:
                raise ValueError
            pts64 = np.array([float(v) for v in fields[1:]], dtype=np.float64)
            if not (np.all(np.isfinite(pts64)) and np.abs(pts64).max() < 1e6):  # pixels; also no float32 overflow
                raise ValueError
            pts = pts64.astype(np.float32).reshape(5, 2)
        except ValueError:
            raise FormatError(
                f"{path}: line {lineno}: expected 'relpath x1 y1 ... x5 y5' (10 numbers), got {text!r}"
            ) from None
        if fields[0] in out:
            raise FormatError(f"{path}: line {lineno}: duplicate entry for {fields[0]!r}")
        out[fields[0]] = pts
    return out


def write_landmarks_file(path: str | os.PathLike, entries: Iterable[tuple[str, np.ndarray]], comment: str = ""):
    """Write {relpath: (5, 2)} entries atomically in the landmarks-file format."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        for line in comment.splitlines():
            fh.write(f"# {line}\n")
        for rel, pts in entries:
            nums = " ".join(f"{v:.4f}" for v in np.asarray(pts, np.float64).reshape(10))
            fh.write(f"{rel} {nums}\n")


def scan_image_folder(root: str | os.PathLike) -> tuple[list[str], list[tuple[str, int]]]:
    """List `root/identity/image` files: (identity names sorted, [(relpath, label)] sorted by identity, name).

    Identities without any image are left out; a root without identity folders raises MissingDataError; images in
    a subfolder of an identity folder raise FormatError (they would otherwise be silently left out). Every image
    must be a regular file of at most MAX_IMAGE_FILE_BYTES (checked here with os.stat, before any is read: a FIFO,
    a device or a broken link named like an image is a one-line error, not a blocked read or a silent omission).
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingDataError(f"{root}: image folder not found")
    classes: list[str] = []
    items: list[tuple[str, int]] = []
    for ident in sorted(p for p in root.iterdir() if p.is_dir()):
        files, subdirs = [], []
        for f in ident.iterdir():
            if f.is_dir():
                subdirs.append(f)
            elif f.suffix.lower() in IMAGE_EXTENSIONS:
                check_size(f, check_regular(f, "image").st_size, MAX_IMAGE_FILE_BYTES, "image")
                files.append(f.name)
        files.sort()
        for sub in sorted(subdirs):
            nested = next((f for f in sub.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS), None)
            if nested is not None:
                raise FormatError(f"{sub}: images inside a subfolder of identity {ident.name!r} (e.g. {nested.name}); "
                                  f"the layout is root/identity/image: move them into {ident} or make them an identity")
        if not files:
            continue
        label = len(classes)
        classes.append(ident.name)
        items.extend((f"{ident.name}/{name}", label) for name in files)
    if not items:
        raise MissingDataError(f"{root}: no images found under root/identity/*{IMAGE_EXTENSIONS}")
    return classes, items


class RecFaceDataset(_Base):
    """An insightface `.rec`/`.idx` training set.

    Record 0 with flag 2 and label [first, end) marks the layout: image records 1..first-1 (JPEG, label =
    class id), identity records first..end-1 holding [start, end) image ranges, num_classes = end - first.
    Without that header every key is an image and num_classes = max label + 1.
    """

    def __init__(
        self,
        prefix: str | os.PathLike | None = None,
        transform: Callable | None = None,
        idx_path: str | os.PathLike | None = None,
        rec_path: str | os.PathLike | None = None,
    ):
        if prefix is not None:
            idx_path, rec_path = f"{prefix}.idx", f"{prefix}.rec"
        if idx_path is None or rec_path is None:
            raise ValueError("give a prefix or both idx_path and rec_path")
        self.reader = IndexedRecordReader(idx_path, rec_path)
        self.transform = transform
        self.header_range: tuple[int, int] | None = None
        self._labels: np.ndarray | None = None
        if 0 in self.reader:
            header, _ = self._unpack(0)
            if header.flag == 2:
                first, end = (float(v) for v in header.label)
                # the range must be integers that the .idx can hold (a huge claim would allocate billions of keys)
                if not (np.isfinite(first) and np.isfinite(end) and first == int(first) and end == int(end)
                        and 1 <= first <= end):
                    raise FormatError(f"{rec_path}: record 0 header range [{first:g}, {end:g}) is invalid")
                if end - 1 > len(self.reader):  # more keys than the .idx holds: name the first missing one (the
                    # search stays within len + 1 keys, so a huge claim allocates nothing)
                    k = next(k for k in range(1, len(self.reader) + 2) if k not in self.reader)
                    raise FormatError(f"{idx_path}: header record 0 says keys 1..{end - 1:.0f} exist; missing key {k}")
                self.header_range = (int(first), int(end))
        if self.header_range is not None:
            first, end = self.header_range
            self.image_keys = list(range(1, first))
            self.num_classes = end - first
            missing = [k for k in (*self.image_keys, *range(first, end)) if k not in self.reader]
            if missing:
                raise FormatError(
                    f"{idx_path}: header record 0 says keys 1..{end - 1} exist; missing key {missing[0]}"
                )
        else:
            self.image_keys = list(self.reader.keys)
            self.num_classes = int(self.labels.max()) + 1 if len(self.image_keys) else 0
            if self.num_classes > len(self.image_keys):  # a class needs an image; a stray huge id would size the head
                raise FormatError(f"{rec_path}: class id {self.num_classes - 1} (key "
                                  f"{self.image_keys[int(np.argmax(self.labels))]}) but only {len(self.image_keys)} "
                                  f"images: labels must be class ids 0..C-1")
        self.landmark_source = "the alignment template"
        if self.image_keys:
            first_header, _ = self._unpack(self.image_keys[0])
            if first_header.flag == LANDMARK_FLAG:
                self.landmark_source = f"the record headers of {rec_path} (label + 5 landmarks)"
                log.info("%s: per-image landmarks from the record headers", rec_path)
            else:
                log.warning("%s: no landmarks in the record headers (flag %d): patch centres are the alignment "
                            "template's points", rec_path, first_header.flag)

    def _unpack(self, key: int):
        try:
            return unpack(self.reader.read(key))
        except FormatError as exc:
            raise FormatError(f"{self.reader.rec_path}: key {key}: {exc}") from None

    def _label(self, header, key: int) -> int:
        label = header.label if header.flag == 0 else header.label[0]
        if not np.isfinite(label) or label < 0 or label != int(label):
            raise FormatError(f"{self.reader.rec_path}: key {key}: label {label} is not a class id")
        return int(label)

    @property
    def labels(self) -> np.ndarray:
        """Class id of every image (reads all headers once)."""
        if self._labels is None:
            self._labels = np.array(
                [self._label(self._unpack(k)[0], k) for k in self.image_keys], dtype=np.int64
            )
        return self._labels

    def identity_ranges(self) -> list[tuple[int, int]]:
        """[start, end) image-key range of each class, from the identity records (header layout only)."""
        if self.header_range is None:
            raise FormatError(f"{self.reader.rec_path}: no insightface header record; no identity ranges")
        first, end = self.header_range
        out = []
        for key in range(first, end):
            header, _ = self._unpack(key)
            if header.flag != 2:
                raise FormatError(
                    f"{self.reader.rec_path}: identity record {key} has flag {header.flag}, expected 2"
                )
            a, b = (float(v) for v in header.label)
            if not (np.isfinite(a) and np.isfinite(b) and a == int(a) and b == int(b)):
                raise FormatError(f"{self.reader.rec_path}: identity record {key} has range [{a:g}, {b:g})")
            out.append((int(a), int(b)))
        return out

    def __len__(self) -> int:
        return len(self.image_keys)

    def record(self, index: int):
        """(key, IRHeader, encoded image bytes) of image `index`, without decoding it."""
        key = self.image_keys[index]
        header, payload = self._unpack(key)
        return key, header, payload

    def __getitem__(self, index: int):
        key = self.image_keys[index]
        header, payload = self._unpack(key)
        image = decode_image(payload, f"{self.reader.rec_path} key {key}")
        lmk = header_landmarks(header, f"{self.reader.rec_path}: key {key}")
        if lmk is None:
            lmk = template_landmarks(*image.shape[:2])
        item = (image, self._label(header, key), lmk)
        return self.transform(item) if self.transform is not None else item


class ImageFolderFaceDataset(_Base):
    """Images under `root/identity/*.jpg` (identities sorted -> labels 0..C-1).

    With `landmarks_file`, each image's 5 points come from it (every image must have an entry); without,
    images are taken as pre-aligned and get the template for their size.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        landmarks_file: str | os.PathLike | None = None,
        transform: Callable | None = None,
    ):
        self.root = Path(root)
        self.classes, self.samples = scan_image_folder(self.root)
        self.num_classes = len(self.classes)
        self.transform = transform
        self.landmarks: dict[str, np.ndarray] | None = None
        self.landmark_source = f"{landmarks_file}" if landmarks_file is not None else "the alignment template"
        if landmarks_file is None:
            log.warning("%s: no landmarks file: patch centres are the alignment template's points", self.root)
        if landmarks_file is not None:
            self.landmarks = read_landmarks_file(landmarks_file)
            for rel, _ in self.samples:
                if rel not in self.landmarks:
                    raise MissingDataError(f"{landmarks_file}: no landmarks for image {rel!r} of {self.root}")

    @property
    def labels(self) -> np.ndarray:
        return np.array([label for _, label in self.samples], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        rel, label = self.samples[index]
        image = read_image(self.root / rel)
        if self.landmarks is not None:
            lmk = self.landmarks[rel].copy()
        else:
            lmk = template_landmarks(*image.shape[:2])
        item = (image, label, lmk)
        return self.transform(item) if self.transform is not None else item
