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

from __future__ import annotations

import argparse
from pathlib import Path

from arface_repro.errors import ConfigError, FormatError, MissingDataError
from arface_repro.utils.argtypes import float_range, int_range, positive_int
from arface_repro.utils.atomic import atomic_open, atomic_path
from arface_repro.utils.outputs import Output, check_outputs
from arface_repro.utils.progress import progress

REPORT_NAMES = ("landmarks.txt", "source_landmarks.txt", "crop_boxes.txt", "align_report.txt")
MODES = ("template", "box")
BOX_DEFAULTS = {"margin": 32, "size": (160, 160)}  # facenet's LFW crops


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
        from arface_repro.models.presets import load_preset

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


def list_images(src: Path) -> list[str]:
    from arface_repro.data.face_datasets import IMAGE_EXTENSIONS

    return sorted(
        p.relative_to(src).as_posix()
        for p in src.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def align_folder(src, dst, weights, size=(112, 112), min_face=20, quality=95, device=None, quiet=True,
                 mode="template", margin=None) -> dict:
    """Crop every image of `src` into `dst` (see module docstring); returns counts and the report lines."""
    import cv2

    from arface_repro.data.alignment import align_face
    from arface_repro.data.box_crop import box_crop
    from arface_repro.data.face_datasets import read_image, write_landmarks_file
    from arface_repro.data.mtcnn import MTCNN, select_main_face

    src, dst = Path(src), Path(dst)
    if mode not in MODES:
        raise ConfigError(f"align mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "box" and margin is None:
        margin = BOX_DEFAULTS["margin"]
    if not src.is_dir():
        raise MissingDataError(f"{src}: source folder not found")

    check_outputs([Output(dst, "DST_DIR", kind="dir", tree=True)], [src, weights])
    images = list_images(src)
    if not images:
        raise MissingDataError(f"{src}: no images found")
    detector = MTCNN(weights, device=device, min_face_size=min_face)
    crop_lmk, src_lmk, boxes_out, report = [], [], [], []
    multi = 0
    for rel in progress(images, desc="align", quiet=quiet, unit="img"):
        try:
            img = read_image(src / rel)
        except FormatError as exc:
            report.append(f"{rel}\tunreadable\t{exc}")
            continue
        boxes, probs, lmks = detector.detect(img)
        if len(boxes) == 0:
            report.append(f"{rel}\tno_face")
            continue
        pick = 0
        if len(boxes) > 1:
            pick = select_main_face(boxes, img.shape)
            multi += 1
            report.append(f"{rel}\tmulti_face\t{len(boxes)} faces, kept box {boxes[pick].round(1).tolist()}")
        if mode == "box":
            try:
                crop, bb, new_lmk = box_crop(img, boxes[pick], margin, size, lmks[pick])
            except ConfigError as exc:
                report.append(f"{rel}\tempty_crop\t{exc}")
                continue
            boxes_out.append(f"{rel} {bb[0]} {bb[1]} {bb[2]} {bb[3]}")
        else:
            crop, new_lmk = align_face(img, lmks[pick], size=size)
        out = dst / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            params = [cv2.IMWRITE_JPEG_QUALITY, quality] if out.suffix.lower() in (".jpg", ".jpeg") else []
            if not cv2.imwrite(str(tmp), crop[:, :, ::-1], params):
                raise RuntimeError(f"could not write {out}")
        crop_lmk.append((rel, new_lmk))
        src_lmk.append((rel, lmks[pick]))
    h, w = size
    what = f"box crops (MTCNN box + margin {margin:g}, resized to {h}x{w})" if mode == "box" else f"aligned {h}x{w} crops"
    write_landmarks_file(dst / "landmarks.txt", crop_lmk, comment=f"{what} of {src}; crop pixels")
    if mode == "box":
        with atomic_open(dst / "crop_boxes.txt", "w", encoding="utf-8") as fh:
            fh.write(f"# relpath x0 y0 x1 y1: region of the source image cut out (x1, y1 exclusive), margin {margin:g}\n")
            fh.writelines(line + "\n" for line in boxes_out)
    write_landmarks_file(dst / "source_landmarks.txt", src_lmk, comment=f"MTCNN landmarks in the images of {src}")
    with atomic_open(dst / "align_report.txt", "w", encoding="utf-8") as fh:
        fh.write("# relpath\tproblem\tdetails\n")
        fh.writelines(line + "\n" for line in report)
    failed = sum(1 for line in report if "\tmulti_face" not in line)
    return {"images": len(images), "aligned": len(crop_lmk), "failed": failed, "multi_face": multi, "report": report}


def run(args) -> int:
    from arface_repro.shared_data import shared_path

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
