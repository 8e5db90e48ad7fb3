"""`arface pack-rec FOLDER OUT_PREFIX`: pack `FOLDER/identity/*.jpg` into an insightface `.rec`/`.idx`.

Layout written (as insightface's face2rec): record 0 = IRHeader flag 2, label [first, end) with
first = images + 1 and end = first + identities; records 1..first-1 = images (label = class id, id = key);
records first..end-1 = one per identity with label [start, end) of its image keys. Identities are the
sorted sub-folder names (label order); images are sorted by name inside each.

--landmarks FILE (the `landmarks.txt` that `arface align` writes: `identity/image x1 y1 ... x5 y5` in crop
pixels) stores each image's 5 aligned points in its record header: mxnet's multi-label form, flag = 11,
float32 values [label, x1, y1, ..., x5, y5]. mxnet and insightface readers still read the class as label[0];
`arface train` (RecFaceDataset) centres the ARFace patches on these points. Every image must have an entry.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from arface_repro.errors import ConfigError, MissingDataError
from arface_repro.utils.progress import progress


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pack-rec",
        help="pack an image folder (root/identity/*.jpg) into an insightface-style .rec/.idx",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("folder", help="image folder: FOLDER/identity/image.jpg")
    p.add_argument("out_prefix", help="output prefix: writes OUT_PREFIX.rec and OUT_PREFIX.idx")
    p.add_argument(
        "--reencode",
        action="store_true",
        help="decode and re-encode every image as JPEG (default: copy JPEG bytes as they are; "
        "non-JPEG files are always re-encoded)",
    )
    p.add_argument("--quality", type=int, default=95, help="JPEG quality when re-encoding (default 95)")
    p.add_argument("--landmarks", metavar="FILE",
                   help="landmarks file of `arface align` (relpath x1 y1 ... x5 y5): stored in each record header")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=run)


def pack_folder(folder, out_prefix, reencode: bool = False, quality: int = 95, quiet: bool = True,
                landmarks_file=None) -> dict:
    """Pack an image folder; returns counts. Every image is decoded once to check it (FormatError if not)."""

    from arface_repro.data.face_datasets import read_landmarks_file, scan_image_folder
    from arface_repro.data.rec_writer import FaceRecWriter, check_output_prefix, jpeg_payload

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


def run(args) -> int:
    stats = pack_folder(args.folder, args.out_prefix, args.reencode, args.quality, args.quiet, args.landmarks)
    if not args.quiet:
        sizes = ", ".join(f"{h}x{w}" for h, w in stats["sizes"])
        lm = f"landmarks of {stats['landmarks']} images in the record headers" if args.landmarks else "no landmarks"
        print(
            f"wrote {args.out_prefix}.rec/.idx: {stats['images']} images, {stats['identities']} identities, "
            f"{stats['reencoded']} re-encoded, image sizes {sizes}; {lm}"
        )
    return 0
