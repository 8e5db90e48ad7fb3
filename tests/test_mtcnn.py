"""MTCNN: loads the shared weights, finds one face with plausible landmarks on deep-funneled LFW images."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")

from arface_repro.data.mtcnn import MTCNN, nms, select_main_face, square_boxes  # noqa: E402
from arface_repro.errors import MissingDataError  # noqa: E402

# First image of the first 8 identities (sorted) of deepfunneled-fold1: one person each, faces of ~90 px.
SAMPLE = [
    "Abdel_Madi_Shabneh/Abdel_Madi_Shabneh_0001.jpg",
    "Abdul_Rahman/Abdul_Rahman_0001.jpg",
    "Abel_Pacheco/Abel_Pacheco_0001.jpg",
    "Afton_Smith/Afton_Smith_0001.jpg",
    "Ahmad_Jbarah/Ahmad_Jbarah_0001.jpg",
    "Akhmed_Zakayev/Akhmed_Zakayev_0001.jpg",
    "Alan_Dershowitz/Alan_Dershowitz_0001.jpg",
    "Alanis_Morissette/Alanis_Morissette_0001.jpg",
]


@pytest.fixture(scope="module")
def detector(shared):
    weights = require(shared / "models" / "mtcnn-facenet-pytorch")
    torch.set_num_threads(1)  # small convolutions: more threads only contend
    return MTCNN(weights, device="cpu")


@pytest.mark.parametrize("rel", SAMPLE)
def test_one_face_with_plausible_landmarks(shared, detector, rel):
    path = require(shared / "data" / "lfw" / "deepfunneled-fold1" / rel)
    img = cv2.imread(str(path))[:, :, ::-1].copy()
    boxes, probs, lmk = detector.detect(img)
    assert boxes.shape == (1, 4) and probs.shape == (1,) and lmk.shape == (1, 5, 2)
    assert probs[0] > 0.9
    x1, y1, x2, y2 = boxes[0]
    assert 50 < x2 - x1 < 160 and 50 < y2 - y1 < 180  # deep-funneled faces are ~100 px, centred
    assert abs((x1 + x2) / 2 - 125) < 30 and abs((y1 + y2) / 2 - 125) < 40
    (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = lmk[0]
    assert lex < rex and lmx < rmx  # left/right ordering
    assert max(ley, rey) < ny < min(lmy, rmy)  # eyes above nose above mouth
    assert lex < nx < rex
    assert np.all((lmk[0, :, 0] > x1) & (lmk[0, :, 0] < x2) & (lmk[0, :, 1] > y1) & (lmk[0, :, 1] < y2))


def test_blank_image_has_no_face(detector):
    boxes, probs, lmk = detector.detect(np.full((120, 160, 3), 128, np.uint8))
    assert boxes.shape == (0, 4) and probs.shape == (0,) and lmk.shape == (0, 5, 2)


def test_flipped_image_mirrors_landmarks(shared, detector):
    path = require(shared / "data" / "lfw" / "deepfunneled-fold1" / SAMPLE[0])
    img = cv2.imread(str(path))[:, :, ::-1].copy()
    _, _, lmk = detector.detect(img)
    _, _, lmk_f = detector.detect(img[:, ::-1].copy())
    mirrored = lmk_f[0][[1, 0, 2, 4, 3]] * [-1, 1] + [img.shape[1] - 1, 0]
    assert np.abs(mirrored - lmk[0]).max() < 4.0  # same face, within a few pixels


def test_missing_weights(tmp_path):
    with pytest.raises(MissingDataError, match="pnet.pt"):
        MTCNN(tmp_path)


def test_nms_and_helpers():
    boxes = np.array([[0, 0, 9, 9], [1, 1, 10, 10], [50, 50, 60, 60], [0, 0, 4, 4]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    assert nms(boxes, scores, 0.5).tolist() == [3, 0, 2]  # box 1 overlaps box 0 by 81/119
    assert nms(boxes, scores, 0.5, mode="min").tolist() == [3, 2]  # box 3 lies inside box 0
    sq = square_boxes(np.array([[10.0, 20.0, 30.0, 60.0]]))
    np.testing.assert_allclose(sq, [[0.0, 20.0, 40.0, 60.0]])
    two = np.array([[0, 0, 60, 60], [90, 90, 150, 150]], float)
    assert select_main_face(two, (240, 240, 3)) == 1


def test_align_command(shared, tmp_path, capsys):
    from arface_repro.cli import main as cli_main
    from arface_repro.data.alignment import ARCFACE_112
    from arface_repro.data.face_datasets import ImageFolderFaceDataset, read_landmarks_file

    weights = require(shared / "models" / "mtcnn-facenet-pytorch")
    src = tmp_path / "src"
    for rel in SAMPLE[:2]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(require(shared / "data" / "lfw" / "deepfunneled-fold1" / rel).read_bytes())
    (src / "other").mkdir()
    cv2.imwrite(str(src / "other" / "blank.jpg"), np.full((90, 90, 3), 128, np.uint8))
    (src / "other" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    multi = "Anders_Fogh_Rasmussen/Anders_Fogh_Rasmussen_0002.jpg"   # two faces in the picture
    (src / multi).parent.mkdir(parents=True, exist_ok=True)
    (src / multi).write_bytes(require(shared / "data" / "lfw" / "deepfunneled-fold1" / multi).read_bytes())
    dst = tmp_path / "dst"
    capsys.readouterr()
    status = cli_main(["align", str(src), str(dst), "--weights", str(weights)])
    assert status == 0
    got = capsys.readouterr()
    out = got.out
    assert "aligned 3/5 images" in out and "2 without a usable face" in out
    # not a terminal: no progress bar, and the multi-face images as one summary line, not one line each
    assert got.err == "" and len(out.splitlines()) == 2
    assert out.splitlines()[1].startswith("1 image(s) had several faces; the large central one was kept")
    report = (dst / "align_report.txt").read_text()
    assert "other/blank.jpg\tno_face" in report and "other/broken.jpg\tunreadable" in report
    assert f"{multi}\tmulti_face\t2 faces, kept box" in report
    lmk = read_landmarks_file(dst / "landmarks.txt")
    assert sorted(lmk) == sorted(SAMPLE[:2] + [multi])
    for rel, pts in lmk.items():
        assert cv2.imread(str(dst / rel)).shape == (112, 112, 3)
        assert np.abs(pts - ARCFACE_112).max() < 8  # a real face lands near the template
    src_lmk = read_landmarks_file(dst / "source_landmarks.txt")
    assert sorted(src_lmk) == sorted(SAMPLE[:2] + [multi]) and all(p.min() > 50 for p in src_lmk.values())
    ds = ImageFolderFaceDataset(dst, dst / "landmarks.txt")
    assert len(ds) == 3 and ds.num_classes == 3
