"""Pack an image folder `FOLDER/identity/*.jpg` into an insightface `.rec`/`.idx` (what `arface pack-rec` runs).

Layout written (as insightface's face2rec, by `data.rec_writer.FaceRecWriter`): record 0 = IRHeader flag 2,
label [first, end); records 1..first-1 = images (label = class id, id = key); records first..end-1 = one per
identity with label [start, end) of its image keys. Identities are the sorted sub-folder names (label order);
images are sorted by name inside each. A landmarks file of `arface align` puts each image's 5 aligned points
in its record header (mxnet's multi-label form, flag 11).
"""

from __future__ import annotations

from pathlib import Path

from arface_repro.data.face_datasets import read_landmarks_file, scan_image_folder
from arface_repro.data.rec_writer import FaceRecWriter, check_output_prefix, jpeg_payload
from arface_repro.errors import ConfigError, MissingDataError
from arface_repro.utils.progress import progress


def pack_folder(folder, out_prefix, reencode: bool = False, quality: int = 95, quiet: bool = True,
                landmarks_file=None) -> dict:
    """Pack an image folder; returns counts. Every image is decoded once to check it (FormatError if not)."""
    if not 1 <= quality <= 100:
        raise ConfigError(f"--quality must be in 1..100, got {quality}")
    folder = Path(folder)
    inputs = [folder] + ([landmarks_file] if landmarks_file else [])
    check_output_prefix(out_prefix, (".rec", ".idx"), inputs)
    classes, items = scan_image_folder(folder)
    lmk = read_landmarks_file(landmarks_file) if landmarks_file else None
    if lmk is not None:
        for rel, _ in items:
            if rel not in lmk:
                raise MissingDataError(f"{landmarks_file}: no landmarks for image {rel!r} of {folder}")
    reencoded = 0
    sizes: set[tuple[int, int]] = set()
    with FaceRecWriter(out_prefix, len(items), len(classes)) as writer:
        for rel, label in progress(items, desc="pack-rec", quiet=quiet, unit="img"):
            data, again, shape = jpeg_payload((folder / rel).read_bytes(), str(folder / rel), reencode, quality)
            reencoded += again
            sizes.add(shape)
            writer.add(label, data, lmk[rel] if lmk is not None else None)
    return {"images": len(items), "identities": len(classes), "reencoded": reencoded, "sizes": sorted(sizes),
            "landmarks": writer.with_landmarks}
