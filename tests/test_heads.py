"""Margin heads: AM-Softmax/CosFace, ArcFace (exact-gradient form + fallback), combined, SphereFace, Softmax."""

import math

import pytest
import torch
import torch.nn.functional as F

from arface_repro.backbones.heads import MarginHead, SphereFaceHead, create_head
from arface_repro.errors import ConfigError


def _cos(head, emb):
    return F.normalize(emb) @ F.normalize(head.weight).t()


def test_amsoftmax_paper_values():
    torch.manual_seed(0)
    h = create_head("amsoftmax", 8, 5)
    assert (h.s, h.m3) == (30.0, 0.4)
    emb, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 3])
    out, cos = h(emb, y), _cos(h, emb)
    exp = 30 * cos
    exp[torch.arange(4), y] -= 30 * 0.4
    assert torch.allclose(out, exp, atol=1e-5)
    assert torch.allclose(h.predict(emb), cos, atol=1e-6)


def test_arcface_target_and_fallback():
    h = MarginHead(2, 2, s=1.0, m2=0.5, m3=0.0)
    with torch.no_grad():
        h.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    for theta in [0.1, 1.0, 2.5, 2.7, 3.0]:
        emb = torch.tensor([[math.cos(theta), math.sin(theta)]])
        t = h(emb, torch.tensor([0]))[0, 0].item()
        if theta + 0.5 <= math.pi:
            assert t == pytest.approx(math.cos(theta + 0.5), abs=1e-5)
        else:  # fallback cos(theta) - m sin(m)
            assert t == pytest.approx(math.cos(theta) - 0.5 * math.sin(0.5), abs=1e-5)
    # exact-gradient form: finite gradients at cos = 1
    emb = torch.tensor([[1.0, 0.0]], requires_grad=True)
    h(emb, torch.tensor([0])).sum().backward()
    assert torch.isfinite(emb.grad).all()


def test_combined_margin_m1_uses_acos():
    h = MarginHead(2, 2, s=2.0, m1=1.2, m2=0.1, m3=0.05)
    with torch.no_grad():
        h.weight.copy_(torch.eye(2))
    theta = 0.7
    out = h(torch.tensor([[math.cos(theta), math.sin(theta)]]), torch.tensor([0]))
    assert out[0, 0].item() == pytest.approx(2 * (math.cos(1.2 * theta + 0.1) - 0.05), abs=1e-5)
    assert out[0, 1].item() == pytest.approx(2 * math.sin(theta), abs=1e-5)


def test_sphereface_psi_and_lambda():
    h = SphereFaceHead(2, 2, m=4)
    with torch.no_grad():
        h.weight.copy_(torch.eye(2))
    h.eval()  # no lambda step
    h.lambda_min, h.base = 0.0, 0.0  # lambda = 0: pure psi
    thetas = torch.linspace(0.01, math.pi - 0.01, 50)
    emb = torch.stack([torch.cos(thetas), torch.sin(thetas)], 1) * 3.0
    t = h(emb, torch.zeros(50, dtype=torch.long))[:, 0] / 3.0
    assert (t[1:] < t[:-1]).all()  # psi is monotone decreasing on [0, pi]
    small = thetas < math.pi / 4
    assert torch.allclose(t[small], torch.cos(4 * thetas[small]), atol=1e-4)
    h2 = SphereFaceHead(2, 3)
    assert h2.lamb == 1000.0
    h2.train()
    h2(torch.randn(4, 2), torch.zeros(4, dtype=torch.long))
    assert h2.lamb == pytest.approx(1000.0 / 1.12)
    h2.iteration.fill_(10**6)
    assert h2.lamb == 5.0


def test_factory_and_softmax():
    for n in ["softmax", "sphereface", "cosface", "amsoftmax", "arcface"]:
        h = create_head(n, 8, 3)
        out = h(torch.randn(2, 8), torch.tensor([0, 2]))
        assert out.shape == (2, 3)
    assert create_head("cosface", 8, 3).m3 == 0.35 and create_head("arcface", 8, 3).m2 == 0.5
    with pytest.raises(ConfigError):
        create_head("nope", 8, 3)


@pytest.mark.parametrize("name,kw,words", [
    ("amsoftmax", {"margin": 0.4}, "takes no argument 'margin'"),   # a typo is never silently ignored
    ("softmax", {"s": 30.0}, "takes no argument 's'"),
    ("arcface", {"s": float("nan")}, "'s' must be a finite number"),
    ("cosface", {"m": -0.1}, "'m' must be"),
    ("sphereface", {"m": 2.5}, "'m' must be an integer"),
    ("combined", {"m1": True}, "'m1'"),
])
def test_head_arguments_are_checked(name, kw, words):
    with pytest.raises(ConfigError, match=words):
        create_head(name, 8, 3, **kw)
    assert create_head("amsoftmax", 8, 3, s=30, m=0.4).s == 30.0  # ints are numbers
