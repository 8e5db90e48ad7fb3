"""EXIF orientation is ignored by every image reader (the pixel grid as stored; see data/image_decoding.py):
an aligned crop carrying a 'rotate 90°' tag is read upright, the same way by each reader."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

PIL = pytest.importorskip("PIL.Image")


def _tagged_jpeg(h: int = 20, w: int = 40, orientation: int = 6) -> bytes:
    """A JPEG whose stored grid is h×w with a bright left band, tagged 'rotate 90° clockwise to display'."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 4] = 255
    im = PIL.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    return buf.getvalue()


def _upright(img: np.ndarray) -> bool:
    """The stored 20×40 grid (bright left band, dark right), not the grid the EXIF tag would turn it into."""
    return img.shape == (20, 40, 3) and img[:, :8].mean() > 200 and img[:, 14:].mean() < 50


def test_opencv_applies_the_tag_by_default():
    """Why the flag is needed: without IMREAD_IGNORE_ORIENTATION OpenCV turns the grid (the case this guards)."""
    import cv2

    raw = cv2.imdecode(np.frombuffer(_tagged_jpeg(), np.uint8), cv2.IMREAD_COLOR)
    assert raw.shape == (40, 20, 3)


def test_decode_and_read_image_ignore_the_tag(tmp_path):
    from arface_repro.data.face_datasets import decode_image, read_image

    data = _tagged_jpeg()
    img = decode_image(data)
    assert _upright(img), f"the EXIF tag turned the decoded image: {img.shape}"
    (tmp_path / "a.jpg").write_bytes(data)
    img = read_image(tmp_path / "a.jpg")
    assert _upright(img), f"the EXIF tag turned the read image: {img.shape}"


def test_embed_loader_ignores_the_tag(tmp_path):
    from arface_repro.eval.embed import _ImageDataset
    from arface_repro.models.preprocess import Preprocess

    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "a.jpg").write_bytes(_tagged_jpeg())
    _, fitted, _, err = _ImageDataset(tmp_path, ["p/a.jpg"], Preprocess(size=(20, 40), fit="none"))[0]
    assert err is None, err
    assert _upright(fitted), f"the EXIF tag turned the image: {fitted.shape}"


def test_bin_and_rec_payloads_ignore_the_tag(tmp_path):
    from arface_repro.data.image_decoding import decode_bin_images
    from arface_repro.data.rec_writer import jpeg_payload

    data = _tagged_jpeg()
    (tmp_path / "s.bin").write_bytes(pickle.dumps(([data, data], [True])))
    _, imgs = decode_bin_images(tmp_path / "s.bin")
    assert _upright(imgs[0]), f"the EXIF tag turned the image: {imgs[0].shape}"
    payload, reencoded, hw = jpeg_payload(data, "a.jpg")
    assert hw == (20, 40) and not reencoded and payload == data
