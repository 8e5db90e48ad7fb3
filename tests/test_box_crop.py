"""Detector-box crops: facenet's align_dataset_mtcnn arithmetic (against a copy of its code written here),
landmarks carried into crop pixels, and `arface align --mode box` / `--preset` on real LFW images."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require

from arface_repro.data.box_crop import box_crop, facenet_crop_box, resize_bilinear
from arface_repro.errors import ConfigError

cv2 = pytest.importorskip("cv2")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def facenet_bb(det, margin, img_size):
    """Structural copy of facenet align_dataset_mtcnn.py's crop box (det: its 1-based detector box)."""
    bb = np.zeros(4, dtype=np.int32)
    bb[0] = np.maximum(det[0] - margin / 2, 0)
    bb[1] = np.maximum(det[1] - margin / 2, 0)
    bb[2] = np.minimum(det[2] + margin / 2, img_size[1])
    bb[3] = np.minimum(det[3] + margin / 2, img_size[0])
    return bb


def test_crop_box_is_facenets():
    rng = np.random.default_rng(0)
    for _ in range(500):
        h, w = rng.integers(60, 300, 2)
        x1, y1 = rng.uniform(-20, w * 0.6), rng.uniform(-20, h * 0.6)
        box = np.array([x1, y1, x1 + rng.uniform(5, w), y1 + rng.uniform(5, h)], np.float32)
        margin = float(rng.choice([0, 16, 32, 44, 7]))
        det = box.astype(np.float64) + (1, 1, 0, 0)  # our 0-based edges -> the reference's 1-based box
        assert facenet_crop_box(box, margin, (h, w, 3)) == tuple(facenet_bb(det, margin, (h, w)).tolist())
    with pytest.raises(ConfigError, match="margin"):
        facenet_crop_box([0, 0, 10, 10], -2, (20, 20))


def test_crop_resize_and_landmarks():
    img = np.zeros((200, 180, 3), np.uint8)
    img[59:62, 79:82] = 255  # a bright 3×3 dot centred on pixel (x 80, y 60)
    crop, bb, pts = box_crop(img, np.array([39.5, 20.0, 139.5, 140.0]), 32, (160, 160), np.array([[80.0, 60.0]] * 5))
    assert bb == (24, 5, 155, 156) and crop.shape == (160, 160, 3)
    ys, xs = np.nonzero(crop[..., 0] > 0)
    w = crop[ys, xs, 0].astype(float)
    centroid = np.array([np.sum(xs * w) / w.sum(), np.sum(ys * w) / w.sum()])
    assert np.abs(centroid - pts[0]).max() < 0.3  # the landmark lands on the resampled dot
    from PIL import Image

    np.testing.assert_array_equal(resize_bilinear(img[5:156, 24:155], (160, 160)),
                                  np.asarray(Image.fromarray(img[5:156, 24:155]).resize((160, 160), Image.BILINEAR)))
    with pytest.raises(ConfigError, match="empty crop box"):
        box_crop(img, np.array([300.0, 300.0, 310.0, 310.0]), 0, (160, 160))


def test_align_box_mode_and_preset(shared, tmp_path, capsys):
    from arface_repro.cli import main as cli_main
    from arface_repro.data.face_datasets import read_landmarks_file

    weights = require(shared / "models" / "mtcnn-facenet-pytorch")
    rels = ["Abel_Pacheco/Abel_Pacheco_0001.jpg", "Akhmed_Zakayev/Akhmed_Zakayev_0001.jpg"]
    src = tmp_path / "src"
    for rel in rels:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(require(shared / "data" / "lfw" / "deepfunneled-fold1" / rel).read_bytes())
    dst = tmp_path / "box"
    assert cli_main(["align", str(src), str(dst), "--mode", "box", "--margin", "32", "--size", "160",
                     "--weights", str(weights), "--threads", "1"]) == 0
    assert "aligned 2/2 images" in capsys.readouterr().out
    lmk = read_landmarks_file(dst / "landmarks.txt")
    boxes = {line.split()[0]: [int(v) for v in line.split()[1:]]
             for line in (dst / "crop_boxes.txt").read_text().splitlines() if not line.startswith("#")}
    src_lmk = read_landmarks_file(dst / "source_landmarks.txt")
    assert sorted(lmk) == sorted(boxes) == sorted(rels)
    for rel in rels:
        assert cv2.imread(str(dst / rel)).shape == (160, 160, 3)
        x0, y0, x1, y1 = boxes[rel]
        assert 0 <= x0 < x1 <= 250 and 0 <= y0 < y1 <= 250 and 110 < x1 - x0 < 180
        want = (src_lmk[rel] - (x0, y0) + 0.5) * (160 / (x1 - x0), 160 / (y1 - y0)) - 0.5
        np.testing.assert_allclose(lmk[rel], want, atol=1e-3)
        assert np.all((lmk[rel] > 20) & (lmk[rel] < 140))  # a centred face inside the 160 px crop
    assert "box crops (MTCNN box + margin 32, resized to 160x160)" in (dst / "landmarks.txt").read_text()
    # the preset gives the same crops; a template-mode flag mix is refused
    dst2 = tmp_path / "preset"
    assert cli_main(["align", str(src), str(dst2), "--preset", "facenet-20180408", "--weights", str(weights),
                     "--quiet"]) == 0
    for rel in rels:
        np.testing.assert_array_equal(cv2.imread(str(dst2 / rel)), cv2.imread(str(dst / rel)))
    assert cli_main(["align", str(src), str(tmp_path / "x"), "--margin", "32", "--weights", str(weights)]) == 2
    assert "--margin applies to --mode box only" in capsys.readouterr().err
    assert cli_main(["align", str(src), str(src / "inside"), "--weights", str(weights)]) == 2
    assert "inside the input" in capsys.readouterr().err


def test_crop_settings():
    from arface_repro.commands.align import crop_settings

    assert crop_settings() == {"mode": "template", "size": (112, 112), "margin": None}
    assert crop_settings("box") == {"mode": "box", "size": (160, 160), "margin": 32}
    assert crop_settings("box", "182", 44) == {"mode": "box", "size": (182, 182), "margin": 44}
    assert crop_settings(preset="sphereface-20") == {"mode": "template", "size": (112, 96), "margin": None}
    assert crop_settings(preset="facenet-20180408", margin=10)["margin"] == 10
    with pytest.raises(ConfigError, match="112 or 112x96 in template mode"):
        crop_settings("template", "160")
