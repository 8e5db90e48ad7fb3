"""Detect faces with MTCNN in every image of a folder and write face crops (what `arface align` runs).

The face kept is the only one, or when several are found the large central one (`data.mtcnn.select_main_face`).
mode "template": warped by its 5 landmarks to the ArcFace 112x112 (or SphereFace 112x96) template; mode "box":
facenet's align_dataset_mtcnn crop (the MTCNN box grown by margin/2 pixels on each side, clipped, resized).
Crops go to DST under the same relative path, with landmarks.txt (crop pixels), source_landmarks.txt (source
pixels), crop_boxes.txt (box mode) and align_report.txt (images without a face, unreadable, with several faces).
"""

from __future__ import annotations

from pathlib import Path

from arface_repro.data.alignment import align_face
from arface_repro.data.box_crop import box_crop
from arface_repro.data.crop_modes import BOX_DEFAULTS, MODES
from arface_repro.data.face_datasets import IMAGE_EXTENSIONS, read_image, write_landmarks_file
from arface_repro.data.mtcnn import MTCNN, select_main_face
from arface_repro.errors import ConfigError, FormatError, MissingDataError
from arface_repro.utils.atomic import atomic_open, atomic_path
from arface_repro.utils.outputs import Output, check_outputs
from arface_repro.utils.progress import progress


def list_images(src: Path) -> list[str]:
    """Every image under `src` (any depth), as sorted relative paths."""
    return sorted(
        p.relative_to(src).as_posix()
        for p in src.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def align_folder(src, dst, weights, size=(112, 112), min_face=20, quality=95, device=None, quiet=True,
                 mode="template", margin=None) -> dict:
    """Crop every image of `src` into `dst` (see module docstring); returns counts and the report lines."""
    import cv2  # heavy optional dependency: only for writing the crops

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
