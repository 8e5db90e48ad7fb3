"""`arface inspect-rec PREFIX`: counts and integrity check of a `.rec`/`.idx` pair.

Prints records, images, identities and image sizes. Checks that every record's framing and IRHeader
read, every image decodes, labels are class ids, no two keys point at one record and every record is
reachable, each record's header id equals its key (when the writer sets ids, as insightface, mxnet and this
package do), and (insightface layout) identity records tile the image keys 1..first-1 in order with every
image's label equal to its identity. Exits 1 on any problem (2 on a file that cannot be opened).
"""
# the check itself: arface_repro.data.rec_inspection.inspect_rec

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect-rec",
        help="print counts of a .rec/.idx and check its integrity (exit 1 on problems)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("prefix", help="PREFIX of PREFIX.rec and PREFIX.idx")
    p.add_argument("--no-decode", action="store_true", help="skip decoding images (framing and labels only)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    # imported when the command runs: data.rec_inspection imports torch (through data.face_datasets), and
    # `arface` imports every command module to build its parser
    from arface_repro.data.rec_inspection import MAX_LISTED, inspect_rec

    summary, problems = inspect_rec(args.prefix, decode=not args.no_decode, quiet=args.quiet)
    print(f"{args.prefix}.rec")
    print(f"  records:    {summary['records']}")
    if summary["header"]:
        layout = f"header record 0: first={summary['header'][0]}, end={summary['header'][1]}"
    else:
        layout = "no insightface header record (all keys are images)"
    print(f"  layout:     {layout}")
    print(f"  images:     {summary['images']}")
    print(f"  identities: {summary['identities']}")
    if summary["image_sizes"]:
        sizes = ", ".join(f"{h}x{w}x{c}: {n}" for (h, w, c), n in sorted(summary["image_sizes"].items()))
        print(f"  image size: {sizes}")
    if problems:
        print(f"  PROBLEMS: {len(problems)}")
        for msg in problems[:MAX_LISTED]:
            print(f"    {msg}")
        if len(problems) > MAX_LISTED:
            print(f"    ... and {len(problems) - MAX_LISTED} more")
        return 1
    print("  integrity:  OK")
    return 0
