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
# the packing itself: arface_repro.data.folder_packing.pack_folder

from __future__ import annotations

import argparse


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


def run(args) -> int:
    # imported when the command runs: data.folder_packing imports torch (through data.face_datasets), and
    # `arface` imports every command module to build its parser
    from arface_repro.data.folder_packing import pack_folder

    stats = pack_folder(args.folder, args.out_prefix, args.reencode, args.quality, args.quiet, args.landmarks)
    if not args.quiet:
        sizes = ", ".join(f"{h}x{w}" for h, w in stats["sizes"])
        lm = f"landmarks of {stats['landmarks']} images in the record headers" if args.landmarks else "no landmarks"
        print(
            f"wrote {args.out_prefix}.rec/.idx: {stats['images']} images, {stats['identities']} identities, "
            f"{stats['reencoded']} re-encoded, image sizes {sizes}; {lm}"
        )
    return 0
