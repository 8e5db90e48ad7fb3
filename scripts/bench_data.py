"""Data-pipeline throughput on this CPU: RecordIO reading, JPEG decoding, dataset items, MTCNN.

Builds a temporary `.rec` of `--records` records by repeating the 205 JPEGs of the shared
`fixtures/recordio/train.rec`, then times: writing it; reading it sequentially (RecordReader) and in
random key order (IndexedRecordReader + unpack); decoding the JPEGs; `RecFaceDataset[i]`
(read + decode); and MTCNN detection on deep-funneled LFW images (250×250).

    python scripts/bench_data.py [--records 20000] [--mtcnn-images 40] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    from arface_repro.data.face_datasets import RecFaceDataset, decode_image, read_image
    from arface_repro.io.recordio import IndexedRecordReader, IndexedRecordWriter, IRHeader, RecordReader, pack, unpack
    from arface_repro.shared_data import shared_dir

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=shared_dir())
    ap.add_argument("--records", type=int, default=20000)
    ap.add_argument("--mtcnn-images", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for MTCNN (default 1)")
    args = ap.parse_args(argv)
    if args.shared is None:
        ap.error("shared folder not found: pass --shared")
    import cv2

    cv2.setNumThreads(1)
    src = IndexedRecordReader.from_prefix(args.shared / "fixtures" / "recordio" / "train")
    first = int(unpack(src.read(0))[0].label[0])
    jpegs = [unpack(src.read(k))[1] for k in range(1, first)]
    print(f"source: {len(jpegs)} JPEGs of 112x112, mean {np.mean([len(j) for j in jpegs]):.0f} bytes")

    with tempfile.TemporaryDirectory() as tmp:
        prefix = Path(tmp) / "bench"
        n = args.records
        n_cls = max(1, n // 5)
        t = time.perf_counter()
        with IndexedRecordWriter.from_prefix(prefix) as w:
            w.write_idx(0, pack(IRHeader(2, [n + 1, n + 1 + n_cls], 0, 0), b""))
            for k in range(1, n + 1):
                w.write_idx(k, pack(IRHeader(0, float((k - 1) // 5), k, 0), jpegs[k % len(jpegs)]))
            for c in range(n_cls):
                w.write_idx(n + 1 + c, pack(IRHeader(2, [1 + 5 * c, 6 + 5 * c], n + 1 + c, 0), b""))
        dt = time.perf_counter() - t
        size_mb = prefix.with_suffix(".rec").stat().st_size / 2**20
        print(f"write:            {n / dt:10.0f} records/s  ({size_mb:.1f} MiB in {dt:.2f} s)")

        t = time.perf_counter()
        count = sum(1 for _ in RecordReader(prefix.with_suffix(".rec")))
        dt = time.perf_counter() - t
        print(f"sequential read:  {count / dt:10.0f} records/s  ({size_mb / dt:.0f} MiB/s)")

        reader = IndexedRecordReader.from_prefix(prefix)
        keys = np.random.default_rng(0).permutation(np.arange(1, n + 1))
        t = time.perf_counter()
        for k in keys:
            unpack(reader.read(int(k)))
        dt = time.perf_counter() - t
        print(f"random read+unpack:{n / dt:9.0f} records/s")

        reps = max(1, 2000 // len(jpegs))
        t = time.perf_counter()
        for _ in range(reps):
            for j in jpegs:
                decode_image(j)
        dt = time.perf_counter() - t
        print(f"JPEG decode:      {reps * len(jpegs) / dt:10.0f} images/s (112x112, cv2, 1 thread)")

        ds = RecFaceDataset(prefix)
        idx = np.random.default_rng(1).permutation(len(ds))[:2000]
        t = time.perf_counter()
        for i in idx:
            ds[int(i)]
        dt = time.perf_counter() - t
        print(f"RecFaceDataset[i]:{len(idx) / dt:10.0f} items/s (random order: read + unpack + decode)")

    import torch

    from arface_repro.data.mtcnn import MTCNN

    torch.set_num_threads(args.threads)
    root = args.shared / "data" / "lfw" / "deepfunneled-fold1"
    files = sorted(root.rglob("*.jpg"))[: args.mtcnn_images]
    imgs = [read_image(f) for f in files]
    det = MTCNN(args.shared / "models" / "mtcnn-facenet-pytorch", device="cpu")
    det.detect(imgs[0])  # warm-up
    t = time.perf_counter()
    faces = sum(len(det.detect(im)[0]) for im in imgs)
    dt = time.perf_counter() - t
    print(f"MTCNN detect:     {len(imgs) / dt:10.1f} images/s (250x250 LFW, {args.threads} torch thread(s), "
          f"{faces} faces in {len(imgs)} images)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
