"""`arface pack-rec FOLDER OUT_PREFIX`: pack `FOLDER/identity/*.jpg` into an insightface `.rec`/`.idx`.

Layout written (as insightface's face2rec): record 0 = IRHeader flag 2, label [first, end) with
first = images + 1 and end = first + identities; records 1..first-1 = images (label = class id, id = key);
records first..end-1 = one per identity with label [start, end) of its image keys. Identities are the
sorted sub-folder names (label order); images are sorted by name inside each.
"""

from __future__ import annotations

import argparse
from pathlib import Path


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
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=run)


def pack_folder(folder, out_prefix, reencode: bool = False, quality: int = 95, quiet: bool = True) -> dict:
    """Pack an image folder; returns counts. Every image is decoded once to check it (FormatError if not)."""
    import cv2
    from tqdm import tqdm

    from arface_repro.data.face_datasets import decode_image, scan_image_folder
    from arface_repro.errors import ConfigError
    from arface_repro.io.recordio import IndexedRecordWriter, IRHeader, pack

    if not 1 <= quality <= 100:
        raise ConfigError(f"--quality must be in 1..100, got {quality}")
    folder = Path(folder)
    classes, items = scan_image_folder(folder)
    n_img, n_cls = len(items), len(classes)
    first, end = n_img + 1, n_img + 1 + n_cls
    ranges = [[None, None] for _ in classes]
    reencoded = 0
    sizes: set[tuple[int, int]] = set()
    with IndexedRecordWriter(f"{out_prefix}.idx", f"{out_prefix}.rec") as writer:
        writer.write_idx(0, pack(IRHeader(2, [first, end], 0, 0), b""))
        for key, (rel, label) in enumerate(tqdm(items, desc="pack-rec", disable=quiet, unit="img"), 1):
            data = (folder / rel).read_bytes()
            img = decode_image(data, str(folder / rel))
            sizes.add(img.shape[:2])
            if reencode or data[:2] != b"\xff\xd8":
                ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
                if not ok:
                    raise RuntimeError(f"JPEG encoding failed for {folder / rel}")
                data = buf.tobytes()
                reencoded += 1
            writer.write_idx(key, pack(IRHeader(0, float(label), key, 0), data))
            if ranges[label][0] is None:
                ranges[label][0] = key
            ranges[label][1] = key + 1
        for c, (start, stop) in enumerate(ranges):
            key = first + c
            writer.write_idx(key, pack(IRHeader(2, [start, stop], key, 0), b""))
    return {"images": n_img, "identities": n_cls, "reencoded": reencoded, "sizes": sorted(sizes)}


def run(args) -> int:
    stats = pack_folder(args.folder, args.out_prefix, args.reencode, args.quality, args.quiet)
    if not args.quiet:
        sizes = ", ".join(f"{h}x{w}" for h, w in stats["sizes"])
        print(
            f"wrote {args.out_prefix}.rec/.idx: {stats['images']} images, {stats['identities']} identities, "
            f"{stats['reencoded']} re-encoded, image sizes {sizes}"
        )
    return 0
