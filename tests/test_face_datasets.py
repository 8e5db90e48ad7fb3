"""Face datasets on the shared train.rec, image folders with landmarks, pack-rec / inspect-rec."""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pytest
from conftest import require

from arface_repro.cli import main as cli_main
from arface_repro.data.alignment import ARCFACE_112, SPHEREFACE_112x96
from arface_repro.data.face_datasets import (
    ImageFolderFaceDataset,
    RecFaceDataset,
    read_landmarks_file,
    template_landmarks,
    write_landmarks_file,
)
from arface_repro.errors import FormatError, MissingDataError
from arface_repro.io.recordio import IndexedRecordReader, IndexedRecordWriter, IRHeader, pack, unpack

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def train_prefix(shared):
    base = shared / "fixtures" / "recordio"
    require(base / "train.rec")
    return base / "train"


@pytest.fixture(scope="module")
def manifest(train_prefix):
    return json.loads(train_prefix.with_suffix(".manifest.json").read_text())["records"]


def test_rec_dataset_reads_shared_train_set(train_prefix, manifest):
    ds = RecFaceDataset(train_prefix)
    assert len(ds) == 205 and ds.num_classes == 40 and ds.header_range == (206, 246)
    want_labels = [int(manifest[str(k)]["label"]) for k in range(1, 206)]
    assert ds.labels.tolist() == want_labels
    assert sorted(set(want_labels)) == list(range(40))
    for i in (0, 1, 100, 204):
        image, label, lmk = ds[i]
        want = manifest[str(i + 1)]
        assert image.dtype == np.uint8 and list(image.shape) == want["shape"]
        assert label == int(want["label"]) and isinstance(label, int)
        np.testing.assert_array_equal(lmk, ARCFACE_112)
    ranges = ds.identity_ranges()
    assert ranges[0] == (1, 5) and ranges[-1] == (200, 206)
    for c, (start, stop) in enumerate(ranges):
        assert set(ds.labels[start - 1 : stop - 1]) == {c}


def test_rec_dataset_image_is_rgb(train_prefix):
    ds = RecFaceDataset(train_prefix)
    header, payload = unpack(ds.reader.read(1))
    bgr = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(ds[0][0], bgr[:, :, ::-1])


def test_rec_dataset_transform_pickle_and_dataloader(train_prefix):
    torch = pytest.importorskip("torch")
    ds = RecFaceDataset(train_prefix, transform=lambda item: (item[0].shape, item[1]))
    assert ds[3] == ((112, 112, 3), ds.labels[3])
    plain = RecFaceDataset(train_prefix)
    clone = pickle.loads(pickle.dumps(plain))
    np.testing.assert_array_equal(clone[7][0], plain[7][0])
    loader = torch.utils.data.DataLoader(plain, batch_size=16, num_workers=2, shuffle=False)
    labels = torch.cat([batch[1] for batch in loader]).numpy()
    assert labels.tolist() == plain.labels.tolist()


def test_rec_without_header_uses_all_keys(tmp_path, train_prefix):
    src = IndexedRecordReader(f"{train_prefix}.idx", f"{train_prefix}.rec")
    with IndexedRecordWriter(tmp_path / "n.idx", tmp_path / "n.rec") as w:
        for new_key, old_key in enumerate([5, 1, 9]):
            header, payload = unpack(src.read(old_key))
            w.write_idx(new_key + 10, pack(IRHeader(0, header.label, new_key, 0), payload))
    ds = RecFaceDataset(tmp_path / "n")
    assert ds.header_range is None and ds.image_keys == [10, 11, 12]
    assert ds.labels.tolist() == [1, 0, 2] and ds.num_classes == 3


def test_rec_bad_image_names_key(tmp_path):
    with IndexedRecordWriter(tmp_path / "b.idx", tmp_path / "b.rec") as w:
        w.write_idx(0, pack(IRHeader(2, [2, 3], 0, 0), b""))
        w.write_idx(1, pack(IRHeader(0, 0.0, 1, 0), b"not a jpeg"))
        w.write_idx(2, pack(IRHeader(2, [1, 2], 2, 0), b""))
    ds = RecFaceDataset(tmp_path / "b")
    with pytest.raises(FormatError, match=r"b\.rec key 1: not a decodable image"):
        ds[0]


def test_rec_header_pointing_at_missing_keys(tmp_path):
    with IndexedRecordWriter(tmp_path / "m.idx", tmp_path / "m.rec") as w:
        w.write_idx(0, pack(IRHeader(2, [3, 4], 0, 0), b""))
        w.write_idx(1, pack(IRHeader(0, 0.0, 1, 0), b""))
    with pytest.raises(FormatError, match="missing key 2"):
        RecFaceDataset(tmp_path / "m")


def _extract(prefix, folder):
    """Write every image of a .rec to folder/<label>/<key>.jpg, bytes unchanged."""
    reader = IndexedRecordReader(f"{prefix}.idx", f"{prefix}.rec")
    first = int(unpack(reader.read(0))[0].label[0])
    for key in range(1, first):
        header, payload = unpack(reader.read(key))
        d = folder / f"{int(header.label):03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{key:05d}.jpg").write_bytes(payload)


def test_pack_rec_reproduces_reference_file_bytes(tmp_path, train_prefix):
    _extract(train_prefix, tmp_path / "folder")
    assert cli_main(["pack-rec", str(tmp_path / "folder"), str(tmp_path / "out"), "--quiet"]) == 0
    assert (tmp_path / "out.rec").read_bytes() == train_prefix.with_suffix(".rec").read_bytes()
    assert (tmp_path / "out.idx").read_bytes() == train_prefix.with_suffix(".idx").read_bytes()


def test_pack_rec_reencode_and_inspect(tmp_path, train_prefix, capsys):
    _extract(train_prefix, tmp_path / "folder")
    png = tmp_path / "folder" / "000" / "extra.png"
    cv2.imwrite(str(png), np.full((112, 112, 3), 90, np.uint8))
    assert cli_main(["pack-rec", str(tmp_path / "folder"), str(tmp_path / "o"), "--reencode", "--quality", "90"]) == 0
    ds = RecFaceDataset(tmp_path / "o")
    assert len(ds) == 206 and ds.num_classes == 40 and ds.labels[4] == 0  # extra.png sorts after 00004.jpg
    capsys.readouterr()
    assert cli_main(["inspect-rec", str(tmp_path / "o"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "images:     206" in out and "identities: 40" in out and "112x112x3: 206" in out and "OK" in out


def test_inspect_rec_flags_inconsistent_labels(tmp_path, train_prefix, capsys):
    src = IndexedRecordReader(f"{train_prefix}.idx", f"{train_prefix}.rec")
    with IndexedRecordWriter(tmp_path / "x.idx", tmp_path / "x.rec") as w:
        for key in src.keys:
            header, payload = unpack(src.read(key))
            if key == 7:
                header = header._replace(label=5.0)  # image 7 belongs to class 1
            if key == 9:
                payload = payload[:100]  # truncated JPEG
            w.write_idx(key, pack(header, payload))
    assert cli_main(["inspect-rec", str(tmp_path / "x"), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "key 7: label 5 but identity record 207 puts it in class 1" in out
    assert "key 9: not a decodable image" in out


def test_inspect_rec_on_shared_train(train_prefix, capsys):
    assert cli_main(["inspect-rec", str(train_prefix), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "records:    246" in out and "images:     205" in out and "identities: 40" in out


# ------------------------------------------------------------------------------------------ image folders
def _folder(tmp_path):
    root = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    for ident, n in (("bob", 2), ("alice", 3), ("empty", 0)):
        (root / ident).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(root / ident / f"{ident}_{i}.jpg"), rng.integers(0, 255, (120, 100, 3), np.uint8))
    (root / "notes.txt").write_text("not an identity")
    return root


def test_image_folder_without_landmarks(tmp_path):
    ds = ImageFolderFaceDataset(_folder(tmp_path))
    assert ds.classes == ["alice", "bob"] and ds.num_classes == 2 and len(ds) == 5
    assert ds.labels.tolist() == [0, 0, 0, 1, 1]
    image, label, lmk = ds[3]
    assert image.shape == (120, 100, 3) and label == 1
    np.testing.assert_allclose(lmk, ARCFACE_112 * [100 / 112, 120 / 112], rtol=1e-6)
    np.testing.assert_array_equal(template_landmarks(112, 96), SPHEREFACE_112x96)


def test_image_folder_with_landmarks_file(tmp_path):
    root = _folder(tmp_path)
    ds0 = ImageFolderFaceDataset(root)
    pts = {rel: np.arange(10, dtype=np.float32).reshape(5, 2) + i for i, (rel, _) in enumerate(ds0.samples)}
    write_landmarks_file(tmp_path / "lmk.txt", pts.items(), comment="test")
    assert read_landmarks_file(tmp_path / "lmk.txt").keys() == pts.keys()
    ds = ImageFolderFaceDataset(root, tmp_path / "lmk.txt", transform=lambda item: item[2])
    for i, (rel, _) in enumerate(ds.samples):
        np.testing.assert_allclose(ds[i], pts[rel], atol=1e-4)
    lines = (tmp_path / "lmk.txt").read_text().splitlines()
    (tmp_path / "short.txt").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(MissingDataError, match="no landmarks for image 'bob/bob_1.jpg'"):
        ImageFolderFaceDataset(root, tmp_path / "short.txt")


def test_landmarks_file_errors(tmp_path):
    (tmp_path / "bad.txt").write_text("# c\na/b.jpg 1 2 3 4 5 6 7 8 9\n")
    with pytest.raises(FormatError, match=r"bad\.txt: line 2"):
        read_landmarks_file(tmp_path / "bad.txt")
    (tmp_path / "dup.txt").write_text("a.jpg" + " 1" * 10 + "\na.jpg" + " 2" * 10 + "\n")
    with pytest.raises(FormatError, match="line 2: duplicate"):
        read_landmarks_file(tmp_path / "dup.txt")
    (tmp_path / "sp.txt").write_text("dir/with space.jpg" + " 1.5" * 10 + "\n")
    assert list(read_landmarks_file(tmp_path / "sp.txt")) == ["dir/with space.jpg"]


def test_missing_folder(tmp_path):
    with pytest.raises(MissingDataError):
        ImageFolderFaceDataset(tmp_path / "nope")


def test_manifest_hash_of_first_image(train_prefix, manifest):
    payload = unpack(RecFaceDataset(train_prefix).reader.read(1))[1]
    assert hashlib.sha256(payload).hexdigest() == manifest["1"]["payload_sha256"]


def test_inspect_rec_reports_bad_magic(tmp_path, train_prefix, capsys):
    raw = bytearray(train_prefix.with_suffix(".rec").read_bytes())
    offset = IndexedRecordReader(f"{train_prefix}.idx", f"{train_prefix}.rec").offset(2)
    raw[offset] ^= 0xFF
    (tmp_path / "c.rec").write_bytes(bytes(raw))
    (tmp_path / "c.idx").write_bytes(train_prefix.with_suffix(".idx").read_bytes())
    assert cli_main(["inspect-rec", str(tmp_path / "c"), "--quiet"]) == 1
    assert f"bad magic 0xCED723F5 at offset {offset}" in capsys.readouterr().out
