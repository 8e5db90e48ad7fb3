"""Patch boxes, the 31 valid modes, mask M, mask scaling, and masks landing on feature-map cells."""

import numpy as np
import pytest
import torch

from arface_repro.errors import ConfigError
from arface_repro.method import patches as P
from arface_repro.method.feature_masking import FeatureMasker, choose_layers

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_boxes_template_radius30_and_clipping():
    b = P.patch_boxes(P.ARCFACE_TEMPLATE_112, 30)
    # left eye (38.2946, 51.6963): x in [8, 68), y in [22, 82)
    assert b[0].tolist() == [8, 22, 68, 82]
    # mouth corners at y ~ 92: bottom clipped to the image height
    assert b[3].tolist() == [12, 62, 72, 112] and b[4].tolist() == [41, 62, 101, 112]
    lm = np.array([[2.0, 3.0]] * 5)
    assert P.patch_boxes(lm, 10)[0].tolist() == [0, 0, 12, 13]
    with pytest.raises(ConfigError):
        P.patch_boxes(np.zeros((4, 2)), 30)


def test_modes_are_31_and_exclude_all_dropped():
    t = P.mode_keep_table()
    assert t.shape == (31, 5)
    assert len({tuple(r) for r in t}) == 31
    assert t.any(1).all()  # every mode keeps at least one patch
    assert t[30].all()  # the last mode keeps everything
    assert (P.keep_to_mode(t) == np.arange(31)).all()
    assert (P.modes_to_keep(torch.arange(31)).numpy() == t).all()
    with pytest.raises(ConfigError):
        P.keep_to_mode([False] * 5)


def test_torch_mask_matches_reference():
    rng = np.random.default_rng(0)
    lms = P.ARCFACE_TEMPLATE_112[None] + rng.normal(0, 4, (6, 5, 2))
    boxes = P.patch_boxes(lms, 17)
    keep = P.mode_keep_table()[rng.integers(0, 31, 6)]
    ref = P.drop_mask_numpy(boxes, keep, 112, 112)
    got = P.drop_mask(torch.from_numpy(boxes), torch.from_numpy(keep), 112, 112)
    assert got.shape == (6, 1, 112, 112)
    assert np.array_equal(got[:, 0].numpy(), ref)
    # a dropped patch is zero inside its box; a keep-all mode gives all ones
    b = boxes[0, 2]
    k = np.ones((1, 5), bool)
    k[0, 2] = False
    m = P.drop_mask_numpy(boxes[:1], k, 112, 112)[0]
    assert m[b[1] : b[3], b[0] : b[2]].max() == 0 and m.sum() == 112 * 112 - (b[3] - b[1]) * (b[2] - b[0])


def test_scale_mask_center_rule():
    m = torch.ones(1, 1, 112, 112)
    m[..., 20:50, 64:112] = 0
    s = P.scale_mask(m, (7, 7))
    # cell (i, j) of a 7x7 map takes pixel (16 i + 8, 16 j + 8)
    exp = m[0, 0, 8::16, 8::16]
    assert torch.equal(s[0, 0], exp)
    assert set(torch.unique(P.scale_mask(m, (14, 14))).tolist()) <= {0.0, 1.0}
    area = P.scale_mask(m, (7, 7), "area")
    assert torch.allclose(area[0, 0, 0, 0], torch.tensor(1.0)) and 0 < area[0, 0, 1, 4] < 1
    with pytest.raises(ConfigError):
        P.scale_mask(m, (7, 7), "bilinear")


def _backbones():
    out = [("tiny", lambda: __import__("arface_repro.backbones.registry", fromlist=["x"]).create_model("tiny_resnet"))]
    try:
        from arface_repro.backbones.registry import create_model, list_models

        for name in list_models():
            out.append((name, lambda n=name: create_model(n)))
    except ImportError:
        pass
    return out


@pytest.mark.parametrize("name,factory", _backbones(), ids=lambda v: v if isinstance(v, str) else "")
def test_masks_land_on_the_right_cells(name, factory):
    torch.manual_seed(0)
    model = factory().eval()
    points = list(model.mask_points)
    assert points, f"{name} declares no mask points"
    masker = FeatureMasker(model, points)
    seen = {}
    mods = dict(model.named_modules())
    for p in points:  # registered after the masker's hooks, so they see the masked output
        mods[p].register_forward_hook(lambda mod, i, o, p=p: seen.__setitem__(p, o.detach().clone()))
    boxes = torch.from_numpy(P.patch_boxes(P.ARCFACE_TEMPLATE_112[None], 30))
    keep = torch.tensor([[True, False, True, True, True]])  # drop the right eye
    mask = P.drop_mask(boxes, keep, 112, 112)
    masker.arm(mask, points)
    with torch.no_grad():
        model(torch.randn(1, 3, 112, 112))
    for p in points:
        out = seen[p]
        cells = P.scale_mask(mask, out.shape[-2:])[0, 0]
        assert (cells == 0).any(), f"{name}.{p}: no dropped cell at {tuple(out.shape[-2:])}"
        assert out[0][:, cells == 0].abs().max() == 0, f"{name}.{p}: dropped cells not zero"
        assert (out[0][:, cells == 1] != 0).float().mean() > 0.3, f"{name}.{p}: kept cells zeroed"
    # disarmed: the hooks are a no-op (inference)
    masker.disarm()
    x = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        a = model(x)
        masker.remove()
        b = model(x)
    assert torch.equal(a, b)


def test_choose_layers_counts():
    g = torch.Generator().manual_seed(0)
    pts = [f"l{i}" for i in range(9)]
    counts = [len(choose_layers(pts, 9, g)) for _ in range(400)]
    assert abs(np.mean(counts) - 4.5) < 0.3  # each of the 9 drawn layers masked with p = 0.5
    assert choose_layers(pts, 0, g) == []
    with pytest.raises(ConfigError):
        choose_layers(pts, 10, g)
