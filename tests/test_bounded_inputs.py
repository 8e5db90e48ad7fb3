"""Bounds checked before work: regular files and size caps (`utils.input_files`, `utils.textfile`), YAML
nesting and alias expansion (`utils.yaml_limits`), image headers (`io.image_header`), `.npz` members
(`io.npz_file`)."""

from __future__ import annotations

import io
import os
import struct
import time
import zipfile

import numpy as np
import pytest
import yaml

from arface_repro.data.image_decoding import decode_bgr
from arface_repro.errors import FormatError, MissingDataError
from arface_repro.io import image_header as ih
from arface_repro.io.npz_file import read_npz
from arface_repro.utils import yaml_limits
from arface_repro.utils.input_files import read_capped
from arface_repro.utils.textfile import read_lines, read_text, read_yaml
from arface_repro.utils.yaml_limits import YAMLLimitError, load_bounded

# ------------------------------------------------------------------ regular files, caps

def test_fifo_device_folder_and_missing_file_are_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "p")
    (tmp_path / "d").mkdir()
    t0 = time.monotonic()
    for path, words in ((tmp_path / "p", "FIFO"), ("/dev/zero", "character device"), (tmp_path / "d", "folder")):
        with pytest.raises(FormatError, match=f"{words}.*expected a regular file as the pair list"):
            read_lines(path, "pair list")
    assert time.monotonic() - t0 < 10  # nothing blocked (a FIFO open without O_NONBLOCK would wait forever)
    with pytest.raises(MissingDataError, match="pair list not found"):
        read_lines(tmp_path / "nope", "pair list")


def test_size_and_line_caps(tmp_path):
    big = tmp_path / "big.txt"
    with open(big, "wb") as fh:
        fh.truncate(65 << 20)
    with pytest.raises(FormatError, match=r"65.0 MiB; at most 64.0 MiB"):
        read_text(big, "pair list")
    assert len(read_capped(big, "file", 65 << 20)) == 65 << 20
    long = tmp_path / "long.txt"
    long.write_bytes(b"ok\n" + b"x" * ((1 << 20) + 1) + b"\nok\n")
    with pytest.raises(FormatError, match=r"long.txt:2: line of 1048577 bytes"):
        read_text(long, "pair list")
    assert read_text(long, "record", max_line=None).startswith("ok\n")
    exact = tmp_path / "exact.txt"
    exact.write_bytes(b"y" * (1 << 20))
    assert len(read_text(exact, "pair list")) == 1 << 20


# ------------------------------------------------------------------ YAML

def laughs(levels: int) -> str:
    text, prev = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n', "a"
    for n in "bcdefghijk"[:levels]:
        text += f"{n}: &{n} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = n
    return text


def test_alias_expansion_is_counted_without_expanding():
    ok = load_bounded(laughs(4))  # 9^5 = 59,049 strings: allowed, and built
    assert len(ok["e"]) == 9 and ok["e"][0][0][0][0] == ok["a"]
    t0 = time.monotonic()
    with pytest.raises(YAMLLimitError, match="expands to more than 1,000,000 nodes"):
        load_bounded(laughs(8))  # ~4e8 nodes from ~400 bytes
    assert time.monotonic() - t0 < 10


def test_nesting_alias_count_and_recursion_limits(monkeypatch):
    d = yaml_limits.MAX_DEPTH
    deepest: list = []
    for _ in range(d - 1):
        deepest = [deepest]
    assert load_bounded("[" * d + "]" * d) == deepest  # exactly MAX_DEPTH levels: read
    with pytest.raises(YAMLLimitError, match=f"nested more than {d} levels"):
        load_bounded("[" * (d + 1) + "]" * (d + 1))
    with pytest.raises(YAMLLimitError, match="nested more than"):
        load_bounded("x: " + "{a: " * 20000 + "1" + "}" * 20000)  # no RecursionError
    for text in ("a: &x [1, *x]", "a: &x {b: {c: *x}}"):
        with pytest.raises(YAMLLimitError, match="refers to a node that contains it"):
            load_bounded(text)
    monkeypatch.setattr(yaml_limits, "MAX_ALIASES", 3)
    assert load_bounded("a: &a 1\nb: [*a, *a, *a]") == {"a": 1, "b": [1, 1, 1]}
    with pytest.raises(YAMLLimitError, match="more than 3 aliases"):
        load_bounded("a: &a 1\nb: [*a, *a, *a, *a]")


def test_plain_yaml_reads_as_safe_load_does():
    text = "x: &base {p: 1, q: [1.5, two]}\ny: {<<: *base, q: 3}\nz: 2020-01-01\nn: null\n"
    assert load_bounded(text) == yaml.safe_load(text)
    assert load_bounded("") is None
    with pytest.raises(yaml.YAMLError):
        load_bounded("a: !!python/object/apply:os.system ['true']")


def test_read_yaml_names_the_file(tmp_path):
    p = tmp_path / "bomb.yaml"
    p.write_text(laughs(8))
    with pytest.raises(FormatError, match=r"bomb.yaml: not valid YAML \(line \d+: expands to more than"):
        read_yaml(p)


# ------------------------------------------------------------------ image headers

@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp", ".webp", ".tiff", ".ppm", ".pgm", ".pbm"])
def test_header_dimensions_agree_with_the_decoder(ext):
    import cv2

    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(ext, img[:, :, 0] if ext in (".pgm", ".pbm") else img)
    assert ok
    fmt, w, h, c, _ = ih.image_header(buf.tobytes())
    assert (w, h) == (53, 37)
    assert decode_bgr(buf.tobytes(), "x").shape == (37, 53, 3)


def test_png_16_bit_and_gif_headers():
    import cv2

    ok, buf = cv2.imencode(".png", np.full((5, 7, 3), 60000, np.uint16))
    assert ih.image_header(buf.tobytes())[1:] == (7, 5, 3, 2)
    gif = b"GIF89a" + struct.pack("<HH", 640, 480) + b"\0" * 10
    assert ih.image_header(gif)[1:3] == (640, 480)


def _jpeg_claiming(w: int, h: int) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))
    b = bytearray(buf.tobytes())
    i = b.index(b"\xff\xc0")
    b[i + 5:i + 9] = struct.pack(">HH", h, w)
    return bytes(b)


def test_huge_declared_dimensions_are_refused_before_decoding():
    with pytest.raises(FormatError, match=r"x.jpg: JPEG header declares 65000×65000 pixels"):
        decode_bgr(_jpeg_claiming(65000, 65000), "x.jpg")
    with pytest.raises(FormatError, match="8193×8192"):
        ih.check_image_header(_jpeg_claiming(8193, 8192), "x")
    assert ih.check_image_header(_jpeg_claiming(8192, 8192), "x") == (8192, 8192)
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    with pytest.raises(FormatError, match="PNG header declares 100000×100000"):
        ih.check_image_header(png, "p.png")


def test_other_formats_and_truncated_headers_are_one_line_errors():
    for data, words in ((b"<svg/>", "not an image format this package reads"), (b"\xff\xd8\xff\xe0\x00", "not a decodable image"),
                        (b"", "0 bytes"), (b"\x89PNG\r\n\x1a\n", "no PNG IHDR")):
        with pytest.raises(FormatError, match=words):
            decode_bgr(data, "x")


def test_decoder_errors_become_format_errors():
    bad = _jpeg_claiming(16, 16)[:-300]  # a real header, then garbage: OpenCV returns None or raises
    with pytest.raises(FormatError, match="x.jpg: not a decodable image"):
        decode_bgr(bad[:40] + b"\xff\xda" + b"\x00" * 10, "x.jpg")


# ------------------------------------------------------------------ .npz members

def _member(zf, name, header, data, deflate=False):
    from numpy.lib import format as npformat

    info = zipfile.ZipInfo(f"{name}.npy")
    info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    h = io.BytesIO()
    npformat.write_array_header_1_0(h, header)
    with zf.open(info, "w", force_zip64=True) as fh:
        fh.write(h.getvalue())
        for chunk in data:
            fh.write(chunk)


def test_npz_members_are_checked_from_their_headers(tmp_path):
    p = tmp_path / "s.npz"
    with open(p, "wb") as fh:
        np.savez(fh, features=np.ones((2, 3), np.float32), paths=np.array(["a", "b"]), model_spec=np.asarray("onnx:m"))
    arrays, meta = read_npz(p, "feature store", ("features", "paths", "flip_features"), optional=("flip_features",),
                            metadata=True)
    assert arrays["features"].shape == (2, 3) and meta == {"model_spec": "onnx:m"}
    with pytest.raises(FormatError, match="unexpected member"):
        read_npz(p, "sidecar", ("features", "paths"))
    with zipfile.ZipFile(p, "w") as zf:
        _member(zf, "features", {"descr": "<f4", "fortran_order": False, "shape": (10**9, 512)}, [b"\0" * 16])
    with pytest.raises(FormatError, match=r"declares shape \(1000000000, 512\)"):
        read_npz(p, "feature store", ("features",))
    with zipfile.ZipFile(p, "w") as zf:
        _member(zf, "features", {"descr": "<f8", "fortran_order": False, "shape": (40 << 20,)},
                (b"\0" * (1 << 20) for _ in range(320)), deflate=True)
    with pytest.raises(FormatError, match="would expand to"):
        read_npz(p, "feature store", ("features",))
    with zipfile.ZipFile(p, "w") as zf:
        _member(zf, "features", {"descr": "|O", "fortran_order": False, "shape": (1,)}, [b"\0" * 8])
    with pytest.raises(FormatError, match=r"object \(pickled\) arrays, which are never loaded"):
        read_npz(p, "feature store", ("features",))


def test_small_compressed_members_within_the_ratio_are_read(tmp_path):
    p = tmp_path / "c.npz"
    x = np.zeros((1000, 64), np.float32)
    with open(p, "wb") as fh:
        np.savez_compressed(fh, scores=x, labels=np.zeros(1000, bool))
    assert read_npz(p, "sidecar", None)[0]["scores"].shape == (1000, 64)


def test_jpeg_frame_header_after_large_metadata_is_found():
    """APP segments (EXIF, ICC profiles) before the frame header are skipped by length, however large."""
    import cv2

    ok, buf = cv2.imencode(".jpg", np.zeros((20, 30, 3), np.uint8))
    b = buf.tobytes()
    app = b"".join(b"\xff\xe2" + struct.pack(">H", 65000) + b"\0" * 64998 for _ in range(4))
    big = b[:2] + app + b[2:]
    assert ih.image_header(memoryview(big))[1:3] == (30, 20)
    assert decode_bgr(big, "x").shape == (20, 30, 3)


def test_npz_member_stored_twice_is_refused(tmp_path):
    p = tmp_path / "twice.npz"
    with zipfile.ZipFile(p, "w") as zf, pytest.warns(UserWarning, match="Duplicate name"):
        for v in (1.0, 2.0):
            _member(zf, "scores", {"descr": "<f8", "fortran_order": False, "shape": (1,)}, [np.float64(v).tobytes()])
    with pytest.raises(FormatError, match="'scores.npy' is stored twice"):
        read_npz(p, "sidecar", None)
