"""`arface make-subset SOURCE OUT_PREFIX --lfw-names FILE`: the paper's "VGGFace2 subset of 50 images per identity".

SOURCE is a VGGFace2-style folder (SOURCE/n000001/0001_01.jpg; `--identity-meta identity_meta.csv` maps the
folder ids to names) or an insightface `.rec` (`--class-names FILE`: line k = `id` or `id<TAB>name` of class k).
Identities whose normalised name is in the LFW names list are removed (the report lists each with the LFW name
it matched); identities with fewer than N images are left out (or kept whole with --keep-short); N images per
identity are drawn with a seed (per identity, seeded by its id: deterministic); --per-identity 0 keeps every
image. Output: OUT_PREFIX.rec/.idx (insightface layout, readable by `arface train` with data.kind=rec data.path=OUT_PREFIX) and OUT_PREFIX.
classes.txt / .images.txt / .report.txt. --landmarks (a folder's `landmarks.txt` from `arface align`) stores
each image's 5 points in its record header (see `arface pack-rec`); a .rec source keeps the landmarks its
records carry.

Name normalisation: letters without a decomposition spelt in ASCII (ø→o, æ→ae, ß→ss, ł→l), accents dropped,
case folded, apostrophes and dots removed (O'Neal = ONeal, J.K. = JK), every other non-alphanumeric character
(space, underscore, hyphen, comma) separates words; names match when the results are equal.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "make-subset",
        help="build the N-images-per-identity training subset without LFW identities (VGGFace2 subset 50)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", help="image folder SOURCE/identity/*.jpg, or a .rec (path or prefix)")
    p.add_argument("out_prefix", help="writes OUT_PREFIX.rec/.idx and OUT_PREFIX.{classes,images,report}.txt")
    p.add_argument("--lfw-names", required=True, metavar="FILE",
                   help="LFW names list (lfw-names.txt: 'Name<TAB>count' lines, or one name a line)")
    p.add_argument("--identity-meta", metavar="CSV", help="VGGFace2 identity_meta.csv (folder id -> name)")
    p.add_argument("--class-names", metavar="FILE", help=".rec source: line k = 'id' or 'id<TAB>name' of class k")
    p.add_argument("--per-identity", type=int, default=50,
                   help="images per identity (default 50, the paper's subset; 0: every image, e.g. the whole VGGFace2 "
                   "minus the LFW identities)")
    p.add_argument("--seed", type=int, default=0, help="selection seed (default 0)")
    p.add_argument("--keep-short", action="store_true",
                   help="keep identities with fewer images than --per-identity (default: leave them out)")
    p.add_argument("--landmarks", metavar="FILE", help="folder source: landmarks file of `arface align`")
    p.add_argument("--reencode", action="store_true", help="re-encode every image as JPEG (default: copy JPEG bytes)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality when re-encoding (default 95)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=run)


def run(args) -> int:
    # the subset builder reads RecordIO through the face datasets, which import torch: loaded when the command
    # runs, not at `arface --help`
    from arface_repro.data.subset import build_subset

    stats = build_subset(
        args.source, args.out_prefix, args.lfw_names, identity_meta=args.identity_meta, class_names=args.class_names,
        per_identity=args.per_identity, seed=args.seed, keep_short=args.keep_short, landmarks_file=args.landmarks,
        reencode=args.reencode, quality=args.quality, quiet=args.quiet,
    )
    if not args.quiet:
        hint = ""
        if stats["source_kind"] == "folder" and not args.landmarks and (Path(args.source) / "landmarks.txt").is_file():
            hint = f" ({Path(args.source) / 'landmarks.txt'} exists: pass --landmarks to store it)"
        n = stats["per_identity"]
        short = f", {stats['fewer_than_n']} with fewer than {n} images ({'kept' if args.keep_short else 'left out'})" if n else ""
        print(
            f"wrote {args.out_prefix}.rec/.idx: {stats['identities']} identities, {stats['images']} images "
            f"({f'up to {n}' if n else 'all'} per identity); removed {stats['removed_lfw']} identities found in LFW"
            f"{short}; landmarks for {stats['with_landmarks']} images{hint}; report {args.out_prefix}.report.txt"
        )
    return 0
