"""insightface `.bin` verification sets (lfw.bin, agedb_30.bin, cfp_fp.bin, calfw.bin, cplfw.bin ...).

A pickle of `(bins, issame_list)`: `bins` holds 2N encoded images in pair order a0, b0, a1, b1, ...
(bytes, or uint8 numpy arrays of the encoded file); Python-2 pickles need `encoding='bytes'`.
Folds follow `KFold(10, shuffle=False)`: contiguous blocks. Images are named `bin/000000` … in the pair
list so a feature store of a `.bin` set uses those names. The images are decoded by
`data.image_decoding.decode_bin_images` (this module reads the file, numpy only).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from arface_repro.errors import FormatError, MissingDataError
from arface_repro.io.pairs import PairList, contiguous_folds
from arface_repro.utils.input_files import open_regular

MAX_BIN_BYTES = 1 << 30   # the largest insightface verification sets (cfp_fp, agedb_30) are ~100 MB


def _bytearray_from_data(*args):
    """bytearray as pickles build it (from bytes, or a latin-1 str and its encoding); `bytearray(N)` would
    allocate N bytes from a few bytes of file, so an integer argument is refused."""
    if not args or isinstance(args[0], int) or not isinstance(args[0], (bytes, str)):
        raise pickle.UnpicklingError("bytearray from something other than bytes (a size would allocate memory "
                                     "the file does not hold)")
    return bytearray(*args)


def _bounded_reconstruct(reconstruct):
    """numpy's `_reconstruct(subtype, shape, dtype)` starts every pickled array with a placeholder of shape
    (0,) that `__setstate__` then fills from the file's bytes; a larger placeholder allocates from nothing."""
    def safe(subtype, shape, dtype):
        if not isinstance(shape, tuple) or any(not isinstance(d, int) or not 0 <= d <= 1 for d in shape):
            raise pickle.UnpicklingError(f"array placeholder of shape {shape!r} (pickles use (0,))")
        return reconstruct(subtype, shape, dtype)
    return safe


class _RestrictedUnpickler(pickle.Unpickler):
    """Only numpy arrays and builtins: a .bin must not run code on load."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("builtins", "bytearray"), ("__builtin__", "bytearray")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            found = super().find_class(module, name)
            if name == "bytearray":
                return _bytearray_from_data
            if name == "_reconstruct":
                return _bounded_reconstruct(found)
            return found
        raise pickle.UnpicklingError(f"forbidden global {module}.{name}")


def load_bin(path: str | os.PathLike) -> tuple[list[bytes], np.ndarray]:
    """Return (encoded images as bytes, issame bool array), checked for consistency."""
    path = Path(path)
    if not path.exists():
        raise MissingDataError(f"{path}: .bin file not found")
    with open_regular(path, "insightface .bin", MAX_BIN_BYTES) as fh:
        try:
            obj = _RestrictedUnpickler(fh, encoding="bytes").load()
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is a format error here
            raise FormatError(f"{path}: not an insightface .bin pickle ({exc})") from exc
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2):
        raise FormatError(f"{path}: expected a pickled (bins, issame_list) pair")
    bins, issame = obj
    images = []
    for i, b in enumerate(bins):
        if isinstance(b, np.ndarray):
            b = b.tobytes()
        elif isinstance(b, (bytearray, memoryview)):
            b = bytes(b)
        if not isinstance(b, bytes) or not b:
            raise FormatError(f"{path}: image record {i} is not encoded image bytes")
        images.append(b)
    issame = _labels(issame, path)
    if len(images) != 2 * len(issame):
        raise FormatError(f"{path}: {len(images)} images for {len(issame)} pairs; expected exactly 2 per pair")
    return images, issame


def _labels(issame, path: Path) -> np.ndarray:
    """The `issame_list` as a bool array. The format stores Python bools (insightface pickles a list of them) or a
    bool/integer numpy array; only True/False and the integers 0/1 are labels. Anything else (the text 'False',
    b'\\x00', a list, 2, 1.5) is refused naming the pair: converting it with bool() would count it as "same"."""
    if isinstance(issame, np.ndarray):
        if issame.ndim != 1 or issame.dtype.kind not in "biu":
            raise FormatError(f"{path}: issame_list is a {issame.dtype} array of shape {issame.shape}; expected a 1-D "
                              f"bool (or 0/1 integer) array")
        bad = np.flatnonzero((issame != 0) & (issame != 1))
        if bad.size:
            raise FormatError(f"{path}: pair {int(bad[0])} has label {issame[bad[0]].item()!r}; labels are True/False (or 0/1)")
        return issame.astype(bool)
    if not isinstance(issame, (list, tuple)):
        raise FormatError(f"{path}: issame_list is a {type(issame).__name__}; expected a list of True/False labels")
    out = np.empty(len(issame), dtype=bool)
    for i, x in enumerate(issame):
        ok = isinstance(x, (bool, np.bool_)) or (isinstance(x, (int, np.integer)) and x in (0, 1))
        if not ok:
            raise FormatError(f"{path}: pair {i} has label {x!r} ({type(x).__name__}); labels are True/False (or 0/1)")
        out[i] = bool(x)
    return out


def bin_image_names(n_images: int) -> list[str]:
    return [f"bin/{i:06d}" for i in range(n_images)]


def bin_pairs(path: str | os.PathLike, n_folds: int = 10) -> PairList:
    """The pair list of a .bin set, with image names `bin/%06d` and contiguous folds."""
    images, issame = load_bin(path)
    names = np.array(bin_image_names(len(images)))
    return PairList(names[0::2], names[1::2], issame, contiguous_folds(len(issame), n_folds), str(path))
