"""The paper's training subset: N images per identity (VGGFace2: 50), identities that appear in LFW removed.

Source: an image folder `root/identity/*.jpg` (VGGFace2's `train/n000001/0001_01.jpg` layout) or an
insightface `.rec`. Identity names: for a folder, VGGFace2's `identity_meta.csv` maps the folder ids to
names (without it the folder name is the name); a `.rec` holds class numbers only, so a class names file
(line k = identity of class k: `id` or `id<TAB>name`) names its classes.

Steps:
1. every identity whose normalised name (`identity_names.normalise_name`) is in the LFW names list is removed;
2. identities with fewer than N images are left out (every identity then has exactly N images, the paper's
   "50 images of each identity"), or kept with all their images (`keep_short`); N = 0 keeps every image of
   every identity (the paper's whole VGGFace2 minus the LFW identities);
3. per identity, N images are drawn without replacement by a generator seeded with (seed, SHA-256 of the
   identity id): the choice does not depend on the other identities, on the order of the source or on the
   machine; the chosen images are written in source order (file name, or record key);
4. output: a packed `.rec`/`.idx` (`rec_writer` layout; labels 0..C-1 in identity order), with each image's 5
   landmarks in its record header when a landmarks file is given (folder source) or when the source records
   carry them (`.rec` source), plus three text files beside it:
   `PREFIX.classes.txt` (line k: `id<TAB>name` of class k; usable as the class names file of a later run),
   `PREFIX.images.txt` (`key<TAB>label<TAB>source image`), and `PREFIX.report.txt` (counts, the removed
   identities with the LFW name they matched, the identities left out for too few images).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from arface_repro.data.face_datasets import RecFaceDataset, header_landmarks, read_landmarks_file, scan_image_folder
from arface_repro.data.identity_names import normalise_name, read_class_names, read_identity_meta, read_names_list
from arface_repro.data.rec_writer import FaceRecWriter, check_output_prefix, jpeg_payload
from arface_repro.errors import ConfigError, MissingDataError
from arface_repro.utils.atomic import atomic_open
from arface_repro.utils.progress import progress

SIDE_FILES = (".classes.txt", ".images.txt", ".report.txt")


@dataclass
class Identity:
    id: str  # folder name, or the class names file's id
    name: str  # person's name (from the meta file, the class names file, or the id)
    images: list = field(default_factory=list)  # folder: relpaths; rec: dataset indices (source order)


def seeded_choice(identity_id: str, count: int, n: int, seed: int) -> np.ndarray:
    """Sorted positions of `n` of `count` images, drawn by a generator seeded with (seed, sha256(identity id))."""
    digest = int.from_bytes(hashlib.sha256(identity_id.encode("utf-8")).digest()[:8], "little")
    rng = np.random.default_rng([int(seed), digest])
    return np.sort(rng.choice(count, size=n, replace=False))


def _folder_identities(root: Path, meta: dict[str, str] | None, meta_path) -> list[Identity]:
    classes, items = scan_image_folder(root)
    idents = []
    for c in classes:
        if meta is not None and c not in meta:
            raise MissingDataError(f"{meta_path}: no entry for identity folder {c!r} of {root}")
        idents.append(Identity(c, meta[c] if meta is not None else c))
    for rel, label in items:
        idents[label].images.append(rel)
    return idents


def _rec_identities(dataset, class_names_path, meta: dict[str, str] | None, meta_path) -> list[Identity]:
    names = read_class_names(class_names_path)
    if len(names) != dataset.num_classes:
        raise ConfigError(f"{class_names_path}: {len(names)} classes listed, the .rec has {dataset.num_classes}")
    idents = []
    for cid, name in names:
        if meta is not None:
            if cid not in meta:
                raise MissingDataError(f"{meta_path}: no entry for identity {cid!r} of {class_names_path}")
            name = meta[cid]
        idents.append(Identity(cid, name or cid))
    for index, label in enumerate(dataset.labels.tolist()):
        idents[label].images.append(index)
    return idents


def open_source(source: str | os.PathLike):
    """('folder', Path) or ('rec', RecFaceDataset) for a folder, a `.rec`/`.idx` path or a `.rec` prefix."""
    src = Path(source)
    if src.is_dir():
        return "folder", src
    text = str(src)
    prefix = text[:-4] if text.endswith((".rec", ".idx")) else text
    if Path(prefix + ".rec").is_file():
        return "rec", RecFaceDataset(prefix)
    raise MissingDataError(f"{source}: neither an image folder nor a .rec/.idx pair")


def build_subset(source, out_prefix, lfw_names, *, identity_meta=None, class_names=None, per_identity: int = 50,
                 seed: int = 0, keep_short: bool = False, landmarks_file=None, reencode: bool = False,
                 quality: int = 95, quiet: bool = True) -> dict:
    """Build the subset (see the module docstring); returns the counts written to the report."""
    if isinstance(per_identity, bool) or not isinstance(per_identity, int) or per_identity < 0:
        raise ConfigError(f"--per-identity must be an integer >= 0 (0: every image), got {per_identity!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"--seed must be an integer >= 0, got {seed!r}")
    if not 1 <= quality <= 100:
        raise ConfigError(f"--quality must be in 1..100, got {quality}")
    kind, src = open_source(source)
    if kind == "rec" and landmarks_file:
        raise ConfigError("--landmarks is for a folder source; a .rec keeps the landmarks its records carry")
    if kind == "folder" and class_names:
        raise ConfigError("--class-names is for a .rec source; a folder's identities are its sub-folder names")
    if kind == "rec" and not class_names:
        raise ConfigError(f"{source}: a .rec holds class numbers, not names: give --class-names FILE (line k = the "
                          f"identity of class k) so that identities in LFW can be found")
    inputs = [p for p in (source, lfw_names, identity_meta, class_names, landmarks_file) if p]
    if kind == "rec":
        inputs += [src.reader.rec_path, src.reader.idx_path]
    check_output_prefix(out_prefix, (".rec", ".idx", *SIDE_FILES), inputs)

    lfw = read_names_list(lfw_names)
    meta = read_identity_meta(identity_meta) if identity_meta else None
    if kind == "folder":
        idents = _folder_identities(src, meta, identity_meta)
    else:
        idents = _rec_identities(src, class_names, meta, identity_meta)
    lmk = read_landmarks_file(landmarks_file) if landmarks_file else None

    removed, short, kept = [], [], []
    for ident in idents:
        key = normalise_name(ident.name)
        if key and key in lfw:
            removed.append((ident, lfw[key]))
        elif per_identity and len(ident.images) < per_identity:
            short.append(ident)
            if keep_short:
                kept.append(ident)
        else:
            kept.append(ident)
    if not kept:
        raise ConfigError(f"{source}: no identity left after removing {len(removed)} LFW identities and "
                          f"{len(short)} with fewer than {per_identity} images")
    chosen = []
    for ident in kept:
        if per_identity and len(ident.images) > per_identity:
            picks = [ident.images[i] for i in seeded_choice(ident.id, len(ident.images), per_identity, seed)]
        else:
            picks = list(ident.images)
        chosen.append(picks)
    if lmk is not None:
        for picks in chosen:
            for rel in picks:
                if rel not in lmk:
                    raise MissingDataError(f"{landmarks_file}: no landmarks for image {rel!r} of {src}")

    total = sum(len(p) for p in chosen)
    listing = []
    reencoded = 0
    with FaceRecWriter(out_prefix, total, len(kept)) as writer:
        bar = progress(total=total, desc="make-subset", quiet=quiet, unit="img")
        for label, (_ident, picks) in enumerate(zip(kept, chosen)):
            for item in picks:
                if kind == "folder":
                    where = str(src / item)
                    data, again, _ = jpeg_payload((src / item).read_bytes(), where, reencode, quality)
                    points = lmk[item] if lmk is not None else None
                    origin = item
                else:
                    key, header, data = src.record(item)
                    where = f"{src.reader.rec_path} key {key}"
                    data, again, _ = jpeg_payload(data, where, reencode, quality)
                    points = header_landmarks(header, where)
                    origin = f"{src.reader.rec_path.name}#{key}"
                reencoded += again
                new_key = writer.add(label, data, points)
                listing.append(f"{new_key}\t{label}\t{origin}\n")
                bar.update(1)
        bar.close()
        stats = {
            "source": str(source), "source_kind": kind, "identities_in_source": len(idents),
            "removed_lfw": len(removed), "fewer_than_n": len(short), "identities": len(kept), "images": total,
            "per_identity": per_identity, "seed": seed, "reencoded": reencoded, "with_landmarks": writer.with_landmarks,
        }
        # the side files are written inside the writer's block: any failure leaves neither the .rec nor them
        with atomic_open(f"{out_prefix}.classes.txt", "w", encoding="utf-8") as fh:
            fh.write(f"# class k = line k (after this comment): identity id<TAB>name; {len(kept)} classes\n")
            fh.writelines(f"{_field(i.id)}\t{_clean(i.name)}\n" for i in kept)
        with atomic_open(f"{out_prefix}.images.txt", "w", encoding="utf-8") as fh:
            fh.write("# key\tlabel\tsource image\n")
            fh.writelines(listing)
        with atomic_open(f"{out_prefix}.report.txt", "w", encoding="utf-8") as fh:
            fh.write(_report(stats, lfw_names, identity_meta, class_names, landmarks_file, removed, short, keep_short))
    return stats


def _clean(text: str) -> str:
    return " ".join(str(text).split())


def _field(text: str) -> str:
    """A text-file field: tabs and line breaks become spaces (ids are otherwise kept as they are)."""
    return str(text).replace("\t", " ").replace("\r", " ").replace("\n", " ")


def _report(stats, lfw_names, identity_meta, class_names, landmarks_file, removed, short, keep_short) -> str:
    n = stats["per_identity"] or "all"
    if stats["source_kind"] == "rec":
        lm_words = f"kept from the source records ({stats['with_landmarks']} images)"
    elif landmarks_file:
        lm_words = f"{landmarks_file} ({stats['with_landmarks']} images)"
    else:
        lm_words = "none (training uses the alignment template's points)"
    lines = [
        "# arface make-subset report",
        f"source: {stats['source']} ({stats['source_kind']})",
        f"LFW names: {lfw_names}",
        f"identity names: {identity_meta or class_names or 'the identity folder names'}",
        "name matching: normalised names (accents, case, spaces/underscores/hyphens, apostrophes and dots ignored), exact",
        f"images per identity: {n} (seed {stats['seed']}; drawn per identity, seeded by the identity id)",
        f"identities in the source: {stats['identities_in_source']}",
        f"removed, name in LFW: {stats['removed_lfw']}",
        f"fewer than {n} images: {stats['fewer_than_n']} ({'kept with all their images' if keep_short else 'left out'})",
        f"written: {stats['identities']} identities, {stats['images']} images ({stats['reencoded']} re-encoded as JPEG)",
        f"landmarks in the record headers: {lm_words}",
        "",
        "## removed: identity in LFW (id, name, LFW name)",
    ]
    lines += [f"{_field(i.id)}\t{_clean(i.name)}\t{lfw_name}" for i, lfw_name in removed]
    lines += ["", f"## fewer than {n} images (id, name, images)"]
    lines += [f"{_field(i.id)}\t{_clean(i.name)}\t{len(i.images)}" for i in short]
    return "\n".join(lines) + "\n"
