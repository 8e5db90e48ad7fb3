"""`arface align SRC_DIR DST_DIR [--mode template|box]`: detect faces with MTCNN and write face crops.

Every image under SRC_DIR (any depth) is searched with MTCNN; the face kept is the only one, or when
several are found the large central one (area − 2 × squared offset from the image centre). Then:
  --mode template (default)  it is warped by its 5 landmarks to the 112×112 ArcFace template (or the 112×96
                             SphereFace one with `--size 112x96`);
  --mode box                 facenet's align_dataset_mtcnn crop: the MTCNN box grown by MARGIN/2 pixels on
                             each side (`--margin`, default 32), clipped to the image, cut out and resized to
                             S×S (`--size`, default 160) with PIL's bilinear filter, as facenet does.
`--preset NAME` takes mode, margin and size from a model preset (protocols/models/NAME.yaml).
Crops are written to DST_DIR under the same relative path. DST_DIR also gets:
  landmarks.txt         `relpath x1 y1 ... x5 y5` of each crop, in crop pixels
  source_landmarks.txt  the detected points in the source image's pixels (relpath relative to SRC_DIR)
  crop_boxes.txt        (box mode) `relpath x0 y0 x1 y1`: the cut-out region in source pixels (x1, y1 exclusive)
  align_report.txt      images without a face / unreadable / with several faces (one per line, tab separated)
Images without a face are reported, not fatal.
"""
# the cropping itself: arface_repro.data.folder_alignment.align_folder; here the flags (and a preset) -> settings

from __future__ import annotations

import argparse
from pathlib import Path

from arface_repro.data.crop_modes import BOX_DEFAULTS, MODES
from arface_repro.errors import ConfigError
from arface_repro.models.presets import load_preset
from arface_repro.shared_data import shared_path
from arface_repro.utils.argtypes import float_range, int_range, positive_int

REPORT_NAMES = ("landmarks.txt", "source_landmarks.txt", "crop_boxes.txt", "align_report.txt")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "align",
        help="detect faces (MTCNN) and write aligned 112x112 or facenet-style box crops plus a landmarks file",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("src_dir", help="folder of images (searched recursively)")
    p.add_argument("dst_dir", help="output folder for crops, landmarks.txt and align_report.txt")
    p.add_argument(
        "--weights",
        help="folder with MTCNN pnet.pt, rnet.pt, onet.pt (default: the shared folder's "
        "models/mtcnn-facenet-pytorch when present)",
    )
    p.add_argument("--mode", choices=MODES, default=None,
                   help="template: 5-point similarity alignment (default); box: facenet's MTCNN box crop")
    p.add_argument("--size", default=None,
                   help="crop size: template mode 112 (ArcFace, default) or 112x96 (SphereFace); box mode S or "
                        "HxW (default 160)")
    p.add_argument("--margin", type=float_range(0.0, 1e4), default=None,
                   help="box mode: pixels added to the MTCNN box in all, half on each side (default 32)")
    p.add_argument("--preset", default=None,
                   help="take --mode/--margin/--size from a model preset, e.g. facenet-20180408 (flags given "
                        "as well win)")
    p.add_argument("--min-face", type=positive_int, default=20, help="MTCNN minimum face size in pixels (default 20)")
    p.add_argument("--quality", type=int_range(1, 100), default=95, help="JPEG quality of the crops (default 95)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument(
        "--threads", type=int_range(1, 256), help="torch CPU threads (default: torch's own choice; 1 is best on a busy CPU)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar, notes or summary")
    p.set_defaults(func=run)


def _parse_size(text: str, mode: str = "template"):
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError:
        parts = []
    if mode == "box":
        if len(parts) in (1, 2) and min(parts) > 0:
            return (parts[0], parts[-1])
        raise ConfigError(f"--size must be S or HxW (positive integers) in box mode, got {text!r}")
    if parts == [112] or parts == [112, 112]:
        return (112, 112)
    if parts == [112, 96]:
        return (112, 96)
    raise ConfigError(f"--size must be 112 or 112x96 in template mode, got {text!r}")


def crop_settings(mode=None, size=None, margin=None, preset=None) -> dict:
    """{'mode', 'size' (h, w), 'margin'} from the flags, a preset's crop block filling what is not given."""

    base = {"mode": "template", "size": None, "margin": None}
    if preset:
        base.update(load_preset(preset).crop_settings())
        if base["mode"] == "template":
            base["margin"] = None
    if mode is not None and mode != base["mode"]:
        base.update(mode=mode, size=None, margin=None)
    mode = base["mode"]
    if margin is not None:
        if mode != "box":
            raise ConfigError("--margin applies to --mode box only")
        base["margin"] = margin
    if size is not None:
        base["size"] = _parse_size(str(size), mode)
    elif base["size"] is None:
        base["size"] = BOX_DEFAULTS["size"] if mode == "box" else (112, 112)
    elif mode == "template":
        base["size"] = _parse_size("x".join(map(str, base["size"])), mode)
    if mode == "box" and base["margin"] is None:
        base["margin"] = BOX_DEFAULTS["margin"]
    if mode == "box" and base["margin"] < 0:
        raise ConfigError(f"--margin must be >= 0, got {base['margin']}")
    return base


def run(args) -> int:
    # imported when the command runs: data.folder_alignment imports torch (MTCNN), and `arface` imports every
    # command module to build its parser
    from arface_repro.data.folder_alignment import align_folder

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    weights = args.weights or shared_path("models", "mtcnn-facenet-pytorch")
    if weights is None:
        raise ConfigError("--weights DIR is required (folder with pnet.pt, rnet.pt, onet.pt)")
    crop = crop_settings(args.mode, args.size, args.margin, args.preset)
    stats = align_folder(
        args.src_dir, args.dst_dir, weights, crop["size"], args.min_face, args.quality,
        args.device, args.quiet, mode=crop["mode"], margin=crop["margin"],
    )
    if not args.quiet:
        report = Path(args.dst_dir) / "align_report.txt"
        print(f"aligned {stats['aligned']}/{stats['images']} images into {args.dst_dir} "
              f"({stats['failed']} without a usable face; list: {report})")
        if stats["multi_face"]:  # one line, not one per image: the images are listed in the report file
            print(f"{stats['multi_face']} image(s) had several faces; the large central one was kept "
                  f"(images and boxes: {report}, 'multi_face')")
    return 0
