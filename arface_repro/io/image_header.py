"""Image dimensions read from the file header, checked before any decoder allocates the pixels.

A 629-byte JPEG may declare 65535×65535 pixels; OpenCV would allocate gigabytes to decode it. Every image the
package decodes (image folders, `.rec` payloads, `.bin` sets, `align`, `pack-rec`) goes through
`data.image_decoding.decode_bgr`, which first calls `check_image_header`: it reads width, height, channels and
bits per sample from the header of the formats this package reads — JPEG (the first SOF segment), PNG (IHDR),
BMP, GIF (logical screen), WebP (VP8, VP8L, VP8X), TIFF (the first IFD) and PNM (P1–P6) — and refuses an image
above MAX_PIXELS (8192×8192) or MAX_SIDE, an image whose header cannot be read, and any other format, before
decoding. numpy only: the decoder (OpenCV) is called from `data/`.
"""

from __future__ import annotations

import struct

from arface_repro.errors import FormatError

MAX_IMAGE_FILE_BYTES = 256 << 20  # an image file read from disk
MAX_SIDE = 65535
MAX_PIXELS = 8192 * 8192
FORMATS = "JPEG, PNG, BMP, GIF, WebP, TIFF, PNM"
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class HeaderError(ValueError):
    pass


def _jpeg(b: bytes):
    i = 2
    while i + 4 <= len(b):
        if b[i] != 0xFF:
            raise HeaderError("a JPEG marker is missing")
        while i < len(b) and b[i] == 0xFF:  # fill bytes
            i += 1
        if i >= len(b):
            break
        marker = b[i]
        i += 1
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            continue
        if marker in (0xD9, 0xDA):
            raise HeaderError("no frame header (SOF) before the image data")
        if i + 2 > len(b):
            break
        (length,) = struct.unpack(">H", b[i:i + 2])
        if length < 2:
            raise HeaderError(f"JPEG segment length {length}")
        if marker in _JPEG_SOF:
            if i + 8 > len(b):
                break
            bits, h, w, c = struct.unpack(">BHHB", b[i + 2:i + 8])
            if h == 0:
                raise HeaderError("JPEG height 0 (defined later by a DNL segment) is not supported")
            return w, h, c, (bits + 7) // 8
        i += length
    raise HeaderError("the JPEG header ends before its frame header (SOF)")


def _png(b: bytes):
    if len(b) < 26 or b[12:16] != b"IHDR":
        raise HeaderError("no PNG IHDR chunk")
    w, h, depth, color = struct.unpack(">IIBB", b[16:26])
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(color)
    if channels is None:
        raise HeaderError(f"PNG colour type {color}")
    return w, h, channels, 2 if depth == 16 else 1


def _bmp(b: bytes):
    if len(b) < 26:
        raise HeaderError("BMP header truncated")
    (size,) = struct.unpack("<I", b[14:18])
    if size == 12:
        w, h, _, bpp = struct.unpack("<HHHH", b[18:26])
    else:
        if len(b) < 30:
            raise HeaderError("BMP header truncated")
        w, h, _, bpp = struct.unpack("<iiHH", b[18:30])
    return abs(w), abs(h), 4 if bpp == 32 else 3, 1


def _gif(b: bytes):
    if len(b) < 10:
        raise HeaderError("GIF header truncated")
    w, h = struct.unpack("<HH", b[6:10])
    return w, h, 4, 1


def _webp(b: bytes):
    if len(b) < 30:
        raise HeaderError("WebP header truncated")
    chunk = b[12:16]
    if chunk == b"VP8 ":
        if b[23:26] != b"\x9d\x01\x2a":
            raise HeaderError("VP8 start code missing")
        w, h = struct.unpack("<HH", b[26:30])
        return w & 0x3FFF, h & 0x3FFF, 3, 1
    if chunk == b"VP8L":
        if b[20] != 0x2F:
            raise HeaderError("VP8L signature missing")
        (bits,) = struct.unpack("<I", b[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 4, 1
    if chunk == b"VP8X":
        w = int.from_bytes(b[24:27], "little") + 1
        h = int.from_bytes(b[27:30], "little") + 1
        return w, h, 4, 1
    raise HeaderError(f"WebP chunk {chunk!r}")


def _tiff(b: bytes):
    end = "<" if b[:2] == b"II" else ">"
    if len(b) < 8:
        raise HeaderError("TIFF header truncated")
    (off,) = struct.unpack(end + "I", b[4:8])
    if off + 2 > len(b):
        raise HeaderError("TIFF directory past the end of the file")
    (n,) = struct.unpack(end + "H", b[off:off + 2])
    tags = {}
    for k in range(n):
        p = off + 2 + 12 * k
        if p + 12 > len(b):
            raise HeaderError("TIFF directory truncated")
        tag, typ, _count = struct.unpack(end + "HHI", b[p:p + 8])
        if _count != 1:  # the values do not fit in the entry (e.g. bits per sample of RGB): not needed here
            continue
        value = struct.unpack(end + "H", b[p + 8:p + 10])[0] if typ == 3 else struct.unpack(end + "I", b[p + 8:p + 12])[0]
        tags[tag] = value
    if 256 not in tags or 257 not in tags:
        raise HeaderError("TIFF without width and height")
    bits = tags.get(258, 8)
    return tags[256], tags[257], tags.get(277, 1), 2 if bits == 16 else (4 if bits > 16 else 1)


def _pnm(b: bytes):
    tokens: list[int] = []
    i, want = 2, 2 if b[1:2] in (b"1", b"4") else 3
    while len(tokens) < want and i < min(len(b), 4096):
        c = b[i:i + 1]
        if c == b"#":
            while i < len(b) and b[i:i + 1] not in (b"\n", b"\r"):
                i += 1
        elif c.isspace():
            i += 1
        else:
            j = i
            while j < len(b) and b[j:j + 1].isdigit():
                j += 1
            if j == i:
                raise HeaderError("PNM header is not numbers")
            tokens.append(int(b[i:j]))
            i = j
    if len(tokens) < want:
        raise HeaderError("PNM header truncated")
    channels = 3 if b[1:2] in (b"3", b"6") else 1
    return tokens[0], tokens[1], channels, 2 if want == 3 and tokens[2] > 255 else 1


def image_header(data: bytes) -> tuple[str, int, int, int, int]:
    """(format, width, height, channels, bytes per sample) from the header; HeaderError when unreadable."""
    b = data if isinstance(data, bytes) else bytes(data)  # a memoryview of a .rec payload, a numpy buffer
    if b[:3] == b"\xff\xd8\xff":
        return ("JPEG", *_jpeg(b))  # segment by segment: metadata before the frame header is skipped, not read
    if b[:8] == b"\x89PNG\r\n\x1a\n":
        return ("PNG", *_png(b))
    if b[:2] == b"BM":
        return ("BMP", *_bmp(b))
    if b[:6] in (b"GIF87a", b"GIF89a"):
        return ("GIF", *_gif(b))
    if b[:4] == b"RIFF" and b[8:12] == b"WEBP":
        return ("WebP", *_webp(b))
    if b[:4] in (b"II*\x00", b"MM\x00*"):
        return ("TIFF", *_tiff(b))
    if len(b) > 2 and b[:1] == b"P" and b[1:2] in b"123456" and b[2:3].isspace():
        return ("PNM", *_pnm(b))
    raise HeaderError(f"not an image format this package reads ({FORMATS})")


def check_image_header(data: bytes, where: str) -> tuple[int, int]:
    """(width, height) after checking the header's dimensions against the limits; FormatError naming `where`."""
    if not len(data):
        raise FormatError(f"{where}: not a decodable image (0 bytes)")
    try:
        fmt, w, h, c, sample = image_header(data)
    except (HeaderError, struct.error, IndexError) as exc:
        raise FormatError(f"{where}: not a decodable image ({exc or 'header truncated'}; {len(data)} bytes)") from None
    if w < 1 or h < 1 or w > MAX_SIDE or h > MAX_SIDE or w * h > MAX_PIXELS or not 1 <= c <= 4:
        raise FormatError(f"{where}: {fmt} header declares {w}×{h} pixels × {c} channel(s); images up to "
                          f"{MAX_PIXELS:,} pixels (8192×8192), 1..4 channels are decoded")
    return w, h
