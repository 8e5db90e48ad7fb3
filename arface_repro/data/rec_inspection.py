"""The integrity check of a `.rec`/`.idx` pair (what `arface inspect-rec PREFIX` prints).

`inspect_rec(prefix)` returns counts (records, images, identities, image sizes, the insightface header range)
and a list of problems: every record's framing and IRHeader read, every image decodes, labels are class ids,
no two keys point at one record and every record is reachable, each record's header id equals its key (when
the writer sets ids, as insightface, mxnet and this package do), and (insightface layout) identity records
tile the image keys 1..first-1 in order with every image's label equal to its identity.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from arface_repro.data.face_datasets import decode_image
from arface_repro.errors import FormatError
from arface_repro.io.recordio import IndexedRecordReader, RecordReader, unpack
from arface_repro.utils.progress import progress

MAX_LISTED = 20   # problems of one kind listed one by one; the rest counted


def inspect_rec(prefix, decode: bool = True, quiet: bool = True) -> tuple[dict, list[str]]:
    """Return (summary counts, list of problems) for PREFIX.rec/.idx."""
    reader = IndexedRecordReader(f"{prefix}.idx", f"{prefix}.rec")
    problems: list[str] = []
    if len(reader) == 0:
        problems.append(f"{reader.idx_path} lists no records (an empty or truncated-to-nothing pair of files)")
    # every physical byte of the .rec parses as records, and .idx offsets point at record starts
    try:
        starts = {off for off, _ in RecordReader(reader.rec_path).iter_with_offsets()}
    except FormatError as exc:
        problems.append(str(exc))
        starts = None
    if starts is not None:
        for key in reader.keys:
            if reader.offset(key) not in starts:
                problems.append(
                    f"{reader.idx_path}: key {key} offset {reader.offset(key)} is not a record start"
                )
        if len(starts) != len(reader):
            problems.append(
                f"{reader.rec_path} holds {len(starts)} records but {reader.idx_path} lists {len(reader)}"
            )
        unreferenced = sorted(starts - {reader.offset(k) for k in reader.keys})
        if unreferenced:
            problems.append(f"{reader.rec_path}: {len(unreferenced)} record(s) no key of {reader.idx_path} points at "
                            f"(unreachable), e.g. the record at offset {unreferenced[0]}")
    # two keys at one offset: one record is read twice and another is unreachable
    by_offset: dict[int, list[int]] = {}
    for key in reader.keys:
        by_offset.setdefault(reader.offset(key), []).append(key)
    for off, keys in by_offset.items():
        if len(keys) > 1:
            problems.append(f"{reader.idx_path}: keys {', '.join(map(str, keys[:5]))} all point at offset {off} "
                            f"(one record read as {len(keys)})")

    headers = {}
    for key in reader.keys:
        try:
            record = reader.read(key)  # its errors name the file, offset and key
        except FormatError as exc:
            problems.append(str(exc))
            continue
        try:
            headers[key] = unpack(record)
        except FormatError as exc:
            problems.append(f"{reader.rec_path}: key {key}: {exc}")

    # header ids: writers that set them (insightface, mxnet im2rec, this package) use id = key
    if any(h.id == key and key != 0 for key, (h, _) in headers.items()):
        wrong = [(key, h.id) for key, (h, _) in headers.items() if h.id != key]
        for key, hid in wrong[:MAX_LISTED]:
            problems.append(f"{reader.rec_path}: key {key} reads a record whose header id is {hid} (expected {key})")
        if len(wrong) > MAX_LISTED:
            problems.append(f"{reader.rec_path}: {len(wrong) - MAX_LISTED} more records whose header id differs "
                            f"from their key")

    header_range = None
    claimed = None
    if 0 in headers and headers[0][0].flag == 2:
        first, end = (float(v) for v in headers[0][0].label)
        if all(np.isfinite([first, end])) and first == int(first) and end == int(end) \
                and 1 <= first <= end and end - 1 <= len(reader):
            claimed = (int(first), int(end))
        else:
            problems.append(f"{reader.rec_path}: header record 0 gives the range [{first:g}, {end:g}), which "
                            f"{len(reader)} keys cannot hold; keys read as images")
    if claimed is not None:
        first, end = claimed
        header_range = (first, end)
        image_keys = list(range(1, first))
        ident_keys = list(range(first, end))
    else:
        image_keys, ident_keys = list(reader.keys), []

    labels: dict[int, int] = {}
    sizes: Counter = Counter()
    for key in progress(image_keys, desc="inspect-rec", quiet=quiet, unit="img"):
        if key not in headers:
            if key not in reader:
                problems.append(f"image key {key} (from header record 0) is missing from {reader.idx_path}")
            continue
        header, payload = headers[key]
        lab = header.label if header.flag == 0 else header.label[0]
        if not np.isfinite(lab) or lab != int(lab) or lab < 0:
            problems.append(f"key {key}: label {lab} is not a class id")
        else:
            labels[key] = int(lab)
        if decode:
            try:
                sizes[decode_image(payload, f"key {key}").shape] += 1
            except FormatError as exc:
                problems.append(str(exc))

    if header_range is not None:
        expected_start = 1
        for c, key in enumerate(ident_keys):
            if key not in headers:
                problems.append(f"identity key {key} (from header record 0) is missing or unreadable")
                continue
            h, _ = headers[key]
            if h.flag != 2:
                problems.append(f"identity record {key}: flag {h.flag}, expected 2 ([start, end) range)")
                continue
            a, b = (float(v) for v in h.label)
            if not (np.isfinite(a) and np.isfinite(b) and a == int(a) and b == int(b)) or not 1 <= a <= b <= first:
                problems.append(f"identity record {key} (class {c}): range [{a:g}, {b:g}) is not a range of image "
                                f"keys 1..{first - 1}")
                continue
            start, stop = int(a), int(b)
            if start != expected_start or stop < start:
                problems.append(
                    f"identity record {key} (class {c}): range [{start}, {stop}) does not follow {expected_start}"
                )
            for k in range(start, stop):
                if k in labels and labels[k] != c:
                    problems.append(f"key {k}: label {labels[k]} but identity record {key} puts it in class {c}")
            expected_start = max(expected_start, stop)
        if ident_keys and expected_start != header_range[0]:
            problems.append(f"identity ranges end at {expected_start}, images end at {header_range[0]}")
        extra = set(reader.keys) - {0, *image_keys, *ident_keys}
        if extra:
            problems.append(f"{len(extra)} keys outside the header's layout, e.g. {min(extra)}")

    summary = {
        "records": len(reader),
        "images": len(image_keys),
        "identities": len(ident_keys) if header_range else len(set(labels.values())),
        "header": header_range,
        "image_sizes": dict(sizes),
    }
    return summary, problems
