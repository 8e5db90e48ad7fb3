"""Per-image landmarks in `.rec` record headers: `arface pack-rec --landmarks` writes them, mxnet-style readers
still read the class, `RecFaceDataset` (and so the trainer) uses them, the template when absent (logged)."""

import logging
import numbers
import struct
from collections import namedtuple

import numpy as np
import pytest

from arface_repro.cli import main
from arface_repro.data.face_datasets import (
    RecFaceDataset,
    read_landmarks_file,
    template_landmarks,
    write_landmarks_file,
)
from arface_repro.io.recordio import IndexedRecordReader

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _reference_unpack(s: bytes):
    """Structural copy of mxnet 1.9.1 `recordio.unpack` (python/mxnet/recordio.py), for the test only."""
    IRHeader = namedtuple("HEADER", ["flag", "label", "id", "id2"])
    header = IRHeader(*struct.unpack("IfQQ", s[:24]))
    s = s[24:]
    if header.flag > 0:
        header = header._replace(label=np.frombuffer(s, np.float32, header.flag))
        s = s[header.flag * 4:]
    return header, s


def _insightface_label(header):
    """insightface's MXFaceDataset.__getitem__: `label = header.label; if not a number: label = label[0]`."""
    label = header.label
    if not isinstance(label, numbers.Number):
        label = label[0]
    return int(label)


def make_folder(root, identities=3, per=4, seed=0, size=(112, 112)):
    import cv2

    rng = np.random.default_rng(seed)
    entries = []
    for c in range(identities):
        (root / f"id{c:02d}").mkdir(parents=True)
        for i in range(per):
            img = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            rel = f"id{c:02d}/{i:03d}.jpg"
            cv2.imwrite(str(root / rel), img)
            entries.append((rel, rng.uniform(10, 100, (5, 2)).astype(np.float32)))
    return entries


def test_pack_rec_stores_landmarks_readable_by_reference_and_dataset(tmp_path, capsys, caplog):
    folder = tmp_path / "aligned"
    entries = make_folder(folder)
    write_landmarks_file(folder / "landmarks.txt", entries, comment="test crops")
    out = tmp_path / "out" / "train"
    assert main(["pack-rec", str(folder), str(out), "--landmarks", str(folder / "landmarks.txt"), "--quiet"]) == 0
    expected = read_landmarks_file(folder / "landmarks.txt")  # the points as the file gives them (4 decimals)
    with caplog.at_level(logging.INFO, logger="arface_repro.data.face_datasets"):
        ds = RecFaceDataset(out)
    assert "record headers" in ds.landmark_source and not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(ds) == 12 and ds.num_classes == 3
    reader = IndexedRecordReader.from_prefix(out)
    for index, (rel, _) in enumerate(entries):
        img, label, lmk = ds[index]
        assert label == index // 4 and img.shape == (112, 112, 3)
        np.testing.assert_array_equal(lmk, expected[rel])
        header, payload = _reference_unpack(reader.read(ds.image_keys[index]))
        assert header.flag == 11 and _insightface_label(header) == label  # the reference reader gets the class
        np.testing.assert_array_equal(header.label[1:].reshape(5, 2), expected[rel])
        assert payload == (folder / rel).read_bytes()  # JPEG bytes copied as they are
    # the identity records keep the insightface layout
    assert ds.identity_ranges() == [(1, 5), (5, 9), (9, 13)]


def test_pack_rec_without_landmarks_is_byte_identical_to_flag_0_layout(tmp_path):
    folder = tmp_path / "f"
    make_folder(folder, identities=2, per=2)
    assert main(["pack-rec", str(folder), str(tmp_path / "plain"), "--quiet"]) == 0
    reader = IndexedRecordReader.from_prefix(tmp_path / "plain")
    header, _ = _reference_unpack(reader.read(1))
    assert header.flag == 0 and header.label == 0.0


def test_pack_rec_landmarks_missing_an_image_is_one_line(tmp_path, capsys):
    folder = tmp_path / "f"
    entries = make_folder(folder, identities=2, per=2)
    write_landmarks_file(tmp_path / "lm.txt", entries[:-1])
    rc = main(["pack-rec", str(folder), str(tmp_path / "o"), "--landmarks", str(tmp_path / "lm.txt"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and entries[-1][0] in err and "lm.txt" in err
    assert not (tmp_path / "o.rec").exists() and not (tmp_path / "o.idx").exists()


def test_pack_rec_refuses_output_inside_input_and_images_in_subfolders(tmp_path, capsys):
    folder = tmp_path / "f"
    make_folder(folder, identities=2, per=2)
    assert main(["pack-rec", str(folder), str(folder / "train"), "--quiet"]) == 2
    assert "inside the input" in capsys.readouterr().err
    (folder / "id00" / "more").mkdir()
    (folder / "id00" / "more" / "x.jpg").write_bytes((folder / "id00" / "000.jpg").read_bytes())
    assert main(["pack-rec", str(folder), str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "subfolder" in err and "more" in err and len(err.strip().splitlines()) == 1


def test_rec_without_landmarks_uses_the_template_and_says_so(shared, caplog):
    from conftest import require

    prefix = require(shared / "fixtures" / "recordio" / "train.rec").with_suffix("")
    with caplog.at_level(logging.WARNING, logger="arface_repro.data.face_datasets"):
        ds = RecFaceDataset(prefix)
    assert ds.landmark_source == "the alignment template"
    assert any("no landmarks in the record headers" in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(ds[0][2], template_landmarks(112, 112))


def test_non_finite_header_landmarks_are_a_format_error(tmp_path):
    from arface_repro.data.rec_writer import FaceRecWriter
    from arface_repro.errors import FormatError
    from arface_repro.io.recordio import IRHeader, pack

    folder = tmp_path / "f"
    make_folder(folder, identities=1, per=1)
    jpeg = (folder / "id00" / "000.jpg").read_bytes()
    with pytest.raises(FormatError, match="10 finite numbers"):
        with FaceRecWriter(tmp_path / "w", 1, 1) as w:
            w.add(0, jpeg, np.full((5, 2), np.nan))
    assert not (tmp_path / "w.rec").exists()
    # a hostile file written by another tool: NaN landmarks in a flag-11 header
    from arface_repro.io.recordio import IndexedRecordWriter

    with IndexedRecordWriter.from_prefix(tmp_path / "h") as w:
        w.write_idx(0, pack(IRHeader(2, [2, 3], 0, 0), b""))
        w.write_idx(1, pack(IRHeader(0, np.r_[0.0, np.full(10, np.nan)].astype(np.float32), 1, 0), jpeg))
        w.write_idx(2, pack(IRHeader(2, [1, 2], 2, 0), b""))
    with pytest.raises(FormatError, match="key 1.*not finite"):
        RecFaceDataset(tmp_path / "h")[0]


def test_trainer_centres_patches_on_header_landmarks(tmp_path, capsys):
    """A short Random (PickPatch) run on a packed .rec with landmarks: the trainer's batches carry them."""
    from arface_repro.train.data import fetch
    from arface_repro.train.loop import train

    folder = tmp_path / "aligned"
    entries = make_folder(folder, identities=4, per=4)
    write_landmarks_file(folder / "landmarks.txt", entries)
    prefix = tmp_path / "train"
    assert main(["pack-rec", str(folder), str(prefix), "--landmarks", str(folder / "landmarks.txt"), "--quiet"]) == 0
    ds = RecFaceDataset(prefix)
    _, _, lms = fetch(ds, np.array([5, 0]))
    np.testing.assert_array_equal(lms[1], read_landmarks_file(folder / "landmarks.txt")[entries[0][0]])
    cfg = {"name": "lm", "model": {"name": "tiny_resnet", "kwargs": {"channels": [8, 8, 16, 16], "fast": True}},
           "method": {"kind": "random", "patch_radius": 16, "num_layers": 1}, "data": {"kind": "rec", "path": str(prefix)},
           "train": {"steps": 2, "batch_size": 8, "log_every": 0, "quiet": False}, "out_dir": str(tmp_path / "run")}
    res = train(cfg, verify_fn=lambda trainer: {})
    assert len(res.history) == 2 and all(np.isfinite(h["loss"]) for h in res.history)
    assert "patch centres from the record headers" in capsys.readouterr().err
