"""Preprocessing conventions: facenet's prewhiten (against a copy of its numpy code), the fixed and arcface
normalisations, named presets in --preprocess strings, and unchanged defaults/cache keys."""

from __future__ import annotations

import numpy as np
import pytest

from arface_repro.errors import ConfigError
from arface_repro.models.preprocess import (
    GENERIC,
    PRESETS,
    Preprocess,
    default_for_arch,
    override_fields,
    prewhiten,
    resolve,
)


def facenet_prewhiten(x):
    """Structural copy of facenet.prewhiten (facenet/src/facenet.py), applied to one image."""
    mean = np.mean(x)
    std = np.std(x)
    std_adj = np.maximum(std, 1.0 / np.sqrt(x.size))
    y = np.multiply(np.subtract(x, mean), 1 / std_adj)
    return y


def test_prewhiten_matches_facenet():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (3, 160, 160, 3), dtype=np.uint8)
    imgs[2] = 77  # a flat image: std 0 -> divided by 1/sqrt(N)
    out = Preprocess(size=(160, 160), norm="prewhiten")(imgs)
    assert out.dtype == np.float32 and out.shape == imgs.shape
    for i in range(3):
        np.testing.assert_array_equal(out[i], facenet_prewhiten(imgs[i]).astype(np.float32))
    assert np.all(out[2] == 0)
    np.testing.assert_array_equal(prewhiten(imgs[:0]), np.zeros((0, 160, 160, 3), np.float32))


def test_fixed_and_arcface_normalisations():
    img = np.array([[[[0, 127, 255]]]], np.uint8)
    fixed = Preprocess(size=(1, 1)).with_overrides("preset=fixed")(img)
    arc = Preprocess(size=(1, 1)).with_overrides("preset=arcface")(img)
    np.testing.assert_allclose(fixed[0, 0, 0], (np.array([0, 127, 255]) - 127.5) / 128, rtol=1e-6)
    np.testing.assert_allclose(arc[0, 0, 0], (np.array([0, 127, 255]) / 255 - 0.5) / 0.5, rtol=1e-6, atol=1e-7)
    bgr = Preprocess(size=(1, 1)).with_overrides("preset=arcface,color=BGR")(img)
    np.testing.assert_allclose(bgr[0, 0, 0], arc[0, 0, 0][::-1])


def test_presets_and_override_order():
    p = GENERIC.with_overrides("preset=facenet")
    assert (p.size, p.color, p.mean, p.std, p.norm) == ((160, 160), "RGB", (127.5,) * 3, (128.0,) * 3, "channel")
    assert GENERIC.with_overrides("preset=facenet,norm=prewhiten").norm == "prewhiten"
    assert GENERIC.with_overrides("preset=facenet-prewhiten").norm == "prewhiten"
    s = GENERIC.with_overrides("preset=sphereface")
    assert (s.size, s.color, s.std) == ((112, 96), "BGR", (128.0,) * 3)
    a = GENERIC.with_overrides("preset=adaface")
    assert (a.color, a.std) == ("BGR", (127.5,) * 3)
    assert override_fields("size=160x160,mean=127.5,std=128") == {"size": (160, 160), "mean": (127.5,),
                                                                   "std": (128.0,)}
    pre, given = resolve(GENERIC, "preset=facenet,color=BGR")
    assert given == {"color", "size", "mean", "std", "norm"} and pre.color == "BGR"
    assert resolve(GENERIC, Preprocess())[1] == {"color", "mean", "std", "size", "fit", "norm"}
    assert set(PRESETS) >= {"fixed", "arcface", "prewhiten", "facenet", "sphereface", "adaface", "insightface"}
    with pytest.raises(ConfigError, match="unknown preprocess preset 'nope'"):
        GENERIC.with_overrides("preset=nope")
    with pytest.raises(ConfigError, match="given twice"):
        GENERIC.with_overrides("std=1,std=2")
    with pytest.raises(ConfigError, match="norm must be one of"):
        GENERIC.with_overrides("norm=whiten")


def test_defaults_and_cache_keys_unchanged():
    # the key of a default-normalised Preprocess is what it was before `norm` existed (existing caches stay valid)
    assert GENERIC.key() == ('{"color": "RGB", "fit": "pad", "mean": [127.5, 127.5, 127.5], "size": [112, 112], '
                             '"std": [128.0, 128.0, 128.0]}')
    assert '"norm": "prewhiten"' in Preprocess(norm="prewhiten").key()
    assert default_for_arch("mobilefacenet") == Preprocess()
    assert default_for_arch("iresnet50").std == (127.5,) * 3
    assert default_for_arch("ir_se50").std == (127.5,) * 3
    assert default_for_arch("inception_resnet_v1") == Preprocess(size=(160, 160))
