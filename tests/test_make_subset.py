"""`arface make-subset`: LFW identities removed by normalised name, N images per identity drawn with a seed,
a packed .rec with the landmarks, and the written report. Through the real CLI entry point."""

import json

import numpy as np
import pytest

from arface_repro.cli import main
from arface_repro.data.face_datasets import RecFaceDataset, read_landmarks_file, write_landmarks_file
from arface_repro.data.identity_names import normalise_name, read_class_names, read_identity_meta, read_names_list
from arface_repro.errors import FormatError


@pytest.mark.parametrize("a,b", [
    ("Jean-Claude_Van_Damme", "jean claude van damme"),
    ("Jean Claude Van-Damme", "Jean_Claude_Van_Damme"),
    ("Zoë Saldaña", "Zoe_Saldana"),
    ("Penélope_Cruz", "PENELOPE CRUZ"),
    ("Sinéad_O'Connor", "Sinead_OConnor"),
    ("J.K._Rowling", "JK_Rowling"),
    ("Søren_Kierkegaard", "Soren_Kierkegaard"),
    ("Łukasz  Piszczek", "lukasz_piszczek"),
    ("Þórður, Guðjónsson", "thordur gudjonsson"),
    ("Müller", "MULLER"),
])
def test_names_that_match(a, b):
    assert normalise_name(a) == normalise_name(b) != ""


@pytest.mark.parametrize("a,b", [("14th_Dalai_Lama", "Dalai_Lama"), ("Jean-Claude_Juncker", "Jean-Claude_Trichet"),
                                 ("Ann", "Anne")])
def test_names_that_do_not_match(a, b):
    assert normalise_name(a) != normalise_name(b)


def test_readers(tmp_path, shared):
    from conftest import require

    lfw = read_names_list(require(shared / "data" / "lfw" / "lfw-names.txt"))
    assert len(lfw) == 5749 and lfw["jean claude van damme"] == "Jean-Claude_Van_Damme"
    bad = tmp_path / "names.txt"
    bad.write_text("Aaron_Eckhart\t1\nBob\tmany\n")
    with pytest.raises(FormatError, match="names.txt: line 2"):
        read_names_list(bad)
    meta = tmp_path / "identity_meta.csv"
    meta.write_text('Class_ID, Name, Sample_Num, Flag, Gender\nn000001, "14th_Dalai_Lama", 424, 0, m\n'
                    'n000002, "A.J._Buckley", 315, 1, m\nn000003, "Penélope, Cruz", 300, 1, f\n', encoding="utf-8")
    assert read_identity_meta(meta) == {"n000001": "14th_Dalai_Lama", "n000002": "A.J._Buckley", "n000003": "Penélope, Cruz"}
    meta.write_text("Class_ID, Name\nn1, A\nn1, B\n")
    with pytest.raises(FormatError, match="line 3: class id 'n1' listed twice"):
        read_identity_meta(meta)
    meta.write_bytes(b"Class_ID, Name\nn1, \xff\xfe\n")
    with pytest.raises(FormatError, match=r"csv:2: not UTF-8"):
        read_identity_meta(meta)
    cls = tmp_path / "classes.txt"
    cls.write_text("# comment\nn1\tAnn\nn2\n")
    assert read_class_names(cls) == [("n1", "Ann"), ("n2", None)]


# identity folder id -> (name in identity_meta.csv, images); four of the names are in LFW under other spellings
PEOPLE = {
    "n000001": ("Jean Claude Van-Damme", 7),  # LFW: Jean-Claude_Van_Damme
    "n000002": ("Sinéad_O'Connor", 6),        # LFW: Sinead_OConnor
    "n000003": ("J.K._Rowling", 6),           # LFW: JK_Rowling
    "n000004": ("Unknown_Person_One", 9),
    "n000005": ("Unknown_Person_Two", 6),
    "n000006": ("Unknown_Person_Three", 3),   # fewer than 5 images
    "n000007": ("14th_Dalai_Lama", 5),        # LFW has Dalai_Lama: not the same normalised name, kept
    "n000008": ("Penélope_Cruz", 5),          # LFW: Penelope_Cruz
}


def make_vggface2(root, seed=0, people=PEOPLE):
    import cv2

    rng = np.random.default_rng(seed)
    lines = ["Class_ID, Name, Sample_Num, Flag, Gender"]
    landmarks = []
    for cid, (name, n) in people.items():
        (root / "train" / cid).mkdir(parents=True)
        lines.append(f'{cid}, "{name}", {n}, 1, m')
        for i in range(n):
            rel = f"{cid}/{i + 1:04d}_01.jpg"
            cv2.imwrite(str(root / "train" / rel), rng.integers(0, 256, (112, 112, 3), dtype=np.uint8))
            landmarks.append((rel, rng.uniform(20, 90, (5, 2))))
    (root / "identity_meta.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_landmarks_file(root / "landmarks.txt", landmarks)
    return root / "train"


@pytest.fixture
def vgg(tmp_path, shared):
    from conftest import require

    return make_vggface2(tmp_path / "vggface2"), require(shared / "data" / "lfw" / "lfw-names.txt")


def _subset(vgg, out, *extra):
    train, lfw = vgg
    return main(["make-subset", str(train), str(out), "--lfw-names", str(lfw), "--identity-meta",
                 str(train.parent / "identity_meta.csv"), "--per-identity", "5", "--quiet", *extra])


def test_folder_subset_removes_lfw_identities_and_draws_n_per_identity(tmp_path, vgg):
    out = tmp_path / "out" / "sub"
    assert _subset(vgg, out, "--landmarks", str(vgg[0].parent / "landmarks.txt")) == 0
    ds = RecFaceDataset(out)
    # kept: n000004 (9 -> 5), n000005 (6 -> 5), n000007 (5); removed: 4 LFW names; left out: n000006 (3 images)
    assert ds.num_classes == 3 and len(ds) == 15 and np.bincount(ds.labels).tolist() == [5, 5, 5]
    classes = read_class_names(f"{out}.classes.txt")
    assert classes == [("n000004", "Unknown_Person_One"), ("n000005", "Unknown_Person_Two"), ("n000007", "14th_Dalai_Lama")]
    report = (tmp_path / "out" / "sub.report.txt").read_text(encoding="utf-8")
    for line in ("removed, name in LFW: 4", "n000001\tJean Claude Van-Damme\tJean-Claude_Van_Damme",
                 "n000002\tSinéad_O'Connor\tSinead_OConnor", "n000003\tJ.K._Rowling\tJK_Rowling",
                 "n000008\tPenélope_Cruz\tPenelope_Cruz", "fewer than 5 images: 1 (left out)",
                 "n000006\tUnknown_Person_Three\t3", "written: 3 identities, 15 images"):
        assert line in report, line
    # every written image is an image of its identity with its landmarks, bytes copied
    listing = [ln.split("\t") for ln in (tmp_path / "out" / "sub.images.txt").read_text().splitlines()[1:]]
    lm = read_landmarks_file(vgg[0].parent / "landmarks.txt")
    assert len(listing) == 15 and "record headers" in ds.landmark_source
    for index, (key, label, rel) in enumerate(listing):
        _, header, payload = ds.record(index)
        assert int(key) == ds.image_keys[index] and int(label) == ds.labels[index]
        assert rel.split("/")[0] == classes[int(label)][0] and payload == (vgg[0] / rel).read_bytes()
        np.testing.assert_array_equal(ds[index][2], lm[rel])
    per = {}
    for _, label, rel in listing:
        per.setdefault(label, []).append(rel)
    assert all(v == sorted(v) and len(set(v)) == 5 for v in per.values())  # distinct, in source order


def test_selection_is_deterministic_and_per_identity(tmp_path, vgg):
    assert _subset(vgg, tmp_path / "a") == 0 and _subset(vgg, tmp_path / "b") == 0
    assert (tmp_path / "a.rec").read_bytes() == (tmp_path / "b.rec").read_bytes()
    assert (tmp_path / "a.images.txt").read_text() == (tmp_path / "b.images.txt").read_text()
    assert _subset(vgg, tmp_path / "c", "--seed", "1") == 0
    picks = lambda p: [ln.split("\t")[2] for ln in (tmp_path / p).read_text().splitlines()[1:]]  # noqa: E731
    assert picks("a.images.txt") != picks("c.images.txt")
    # removing another identity from the source changes nothing for the others (seeded by the identity id)
    import shutil

    shutil.rmtree(vgg[0] / "n000005")
    assert _subset(vgg, tmp_path / "d") == 0
    assert [p for p in picks("a.images.txt") if not p.startswith("n000005")] == picks("d.images.txt")


def test_keep_short_and_every_image(tmp_path, vgg):
    assert _subset(vgg, tmp_path / "k", "--keep-short") == 0
    assert np.bincount(RecFaceDataset(tmp_path / "k").labels).tolist() == [5, 5, 3, 5]
    assert _subset(vgg, tmp_path / "all", "--per-identity", "0") == 0
    assert np.bincount(RecFaceDataset(tmp_path / "all").labels).tolist() == [9, 6, 3, 5]


def test_rec_source_with_class_names(tmp_path, shared):
    """The reference-written fixture .rec (40 LFW identities): its classes named, three of them in a names list."""
    from conftest import require

    src = require(shared / "fixtures" / "recordio" / "train.rec")
    names = json.loads(src.with_name("train.manifest.json").read_text())["identities"]
    (tmp_path / "classes.txt").write_text("".join(f"{n}\n" for n in names))
    (tmp_path / "lfw.txt").write_text(f"{names[0]}\t1\n{names[5].replace('_', ' ').upper()}\n{names[7]}\t2\n")
    src_ds = RecFaceDataset(src.with_suffix(""))
    counts = np.bincount(src_ds.labels)
    rc = main(["make-subset", str(src), str(tmp_path / "sub"), "--lfw-names", str(tmp_path / "lfw.txt"),
               "--class-names", str(tmp_path / "classes.txt"), "--per-identity", "4", "--quiet"])
    assert rc == 0
    ds = RecFaceDataset(tmp_path / "sub")
    kept = [i for i in range(40) if i not in (0, 5, 7) and counts[i] >= 4]
    assert ds.num_classes == len(kept) and np.bincount(ds.labels).tolist() == [4] * len(kept)
    assert [c for c, _ in read_class_names(tmp_path / "sub.classes.txt")] == [names[i] for i in kept]
    # payloads are the source records' bytes, identity by identity
    listing = [ln.split("\t") for ln in (tmp_path / "sub.images.txt").read_text().splitlines()[1:]]
    for index, (_, label, origin) in enumerate(listing):
        key = int(origin.split("#")[1])
        _, src_header, src_payload = src_ds.record(src_ds.image_keys.index(key))
        assert ds.record(index)[2] == src_payload and int(src_header.label) == kept[int(label)]
    assert "removed, name in LFW: 3" in (tmp_path / "sub.report.txt").read_text()


@pytest.mark.parametrize("case", ["rec-without-class-names", "output-inside-input", "missing-meta-entry",
                                  "class-count-mismatch", "negative-n", "no-lfw-file"])
def test_bad_input_is_one_line(tmp_path, vgg, shared, capsys, case):
    from conftest import require

    train, lfw = vgg
    meta = train.parent / "identity_meta.csv"
    rec = require(shared / "fixtures" / "recordio" / "train.rec")
    args = {
        "rec-without-class-names": [str(rec), str(tmp_path / "o"), "--lfw-names", str(lfw)],
        "output-inside-input": [str(train), str(train / "sub"), "--lfw-names", str(lfw)],
        "missing-meta-entry": [str(train), str(tmp_path / "o"), "--lfw-names", str(lfw), "--identity-meta", str(tmp_path / "m.csv")],
        "class-count-mismatch": [str(rec), str(tmp_path / "o"), "--lfw-names", str(lfw), "--class-names", str(tmp_path / "c.txt")],
        "negative-n": [str(train), str(tmp_path / "o"), "--lfw-names", str(lfw), "--per-identity", "-1"],
        "no-lfw-file": [str(train), str(tmp_path / "o"), "--lfw-names", str(tmp_path / "nope.txt")],
    }[case]
    (tmp_path / "m.csv").write_text(meta.read_text().replace("n000004,", "n999999,"))
    (tmp_path / "c.txt").write_text("a\nb\n")
    words = {"rec-without-class-names": "--class-names", "output-inside-input": "inside the input",
             "missing-meta-entry": "n000004", "class-count-mismatch": "2 classes listed, the .rec has 40",
             "negative-n": "--per-identity", "no-lfw-file": "nope.txt"}[case]
    rc = main(["make-subset", *args, "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("arface make-subset: error:") and words in err, err
    assert not (tmp_path / "o.rec").exists() and not list(train.glob("sub*"))
