"""Attention-Net outputs, sampling, and the REINFORCE estimator against its analytic expectation."""

import numpy as np
import pytest
import torch

from arface_repro.method import patches as P
from arface_repro.method.attention_net import AttentionNet, greedy_modes, log_prob, sample_modes
from arface_repro.method.reinforce import EMABaseline, reinforce_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_attention_net_shapes_and_uniform_start():
    net = AttentionNet()
    assert sum(p.numel() for p in net.parameters()) < 50_000
    x = torch.randn(3, 3, 112, 112)
    boxes = torch.from_numpy(P.patch_boxes(np.repeat(P.ARCFACE_TEMPLATE_112[None], 3, 0), 30))
    logits = net(x, boxes)
    assert logits.shape == (3, 31)
    assert torch.allclose(log_prob(logits, torch.tensor([0, 5, 30])), torch.full((3,), -np.log(31.0)))
    assert net.crop_patches(x, boxes).shape == (15, 3, 24, 24)


def test_sampling_inverse_cdf_and_argmax():
    logits = torch.log(torch.tensor([[0.2, 0.5, 0.3] + [1e-12] * 28]))
    u = torch.tensor([0.0, 0.19, 0.21, 0.69, 0.71, 0.999])
    modes = sample_modes(logits.expand(6, -1), u)
    assert modes.tolist() == [0, 0, 1, 1, 2, 2]
    assert greedy_modes(logits).tolist() == [1]
    g = torch.Generator().manual_seed(0)
    m = sample_modes(logits.expand(20000, -1), torch.rand(20000, generator=g))
    freq = torch.bincount(m, minlength=31)[:3].float() / 20000
    assert torch.allclose(freq, torch.tensor([0.2, 0.5, 0.3]), atol=0.015)


def test_reinforce_gradient_matches_analytic():
    torch.manual_seed(0)
    theta = (2.0 * torch.randn(31)).requires_grad_(True)
    reward = torch.rand(31)  # r(mode)
    b = 0.3
    p = torch.softmax(theta.detach(), 0)
    analytic = p * (reward - (p * reward).sum())  # d/dtheta E_p[r]
    n = 200_000
    g = torch.Generator().manual_seed(1)
    modes = sample_modes(theta.expand(n, -1), torch.rand(n, generator=g))
    lp = log_prob(theta.expand(n, -1), modes)
    loss = reinforce_loss(lp, reward[modes] - b, n)
    loss.backward(retain_graph=True)
    est = -theta.grad
    err = (est - analytic).abs().max().item()
    scale = analytic.abs().max().item()
    assert scale > 0.01  # the check is not vacuous
    assert err < 0.1 * scale, (err, scale)
    assert torch.sign(est[analytic.abs() > 0.3 * scale]).eq(torch.sign(analytic[analytic.abs() > 0.3 * scale])).all()
    # batch form: one scalar advantage multiplies the summed log-probability
    theta.grad = None
    reinforce_loss(lp[:10], 0.5, 10).backward()
    theta2 = theta.detach().clone().requires_grad_(True)
    (-(0.5 * log_prob(theta2.expand(10, -1), modes[:10]).sum()) / 10).backward()
    assert torch.allclose(theta.grad, theta2.grad)


def test_ema_baseline():
    b = EMABaseline(0.99)
    assert b.value == 0.0
    b.update(1.0)
    assert abs(b.value - 0.01) < 1e-12
    b.update(0.5)
    assert abs(b.value - (0.99 * 0.01 + 0.005)) < 1e-12
    c = EMABaseline()
    c.load_state_dict(b.state_dict())
    assert c.value == b.value


def test_choose_layers_readings():
    """per_batch: with p = 0.5 either no layer or exactly num_layers distinct layers; per_layer: ~num_layers/2."""
    from arface_repro.method.feature_masking import choose_layers

    pts = [f"l{i}" for i in range(12)]
    g = torch.Generator().manual_seed(0)
    sizes = [len(choose_layers(pts, 9, g, 0.5, "per_batch")) for _ in range(2000)]
    assert set(sizes) == {0, 9}
    assert abs(sizes.count(9) / 2000 - 0.5) < 0.04
    picked = choose_layers(pts, 9, torch.Generator().manual_seed(1), 1.0, "per_batch")
    assert len(set(picked)) == 9 and set(picked) <= set(pts)
    g = torch.Generator().manual_seed(0)
    sizes = [len(choose_layers(pts, 9, g, 0.5, "per_layer")) for _ in range(2000)]
    assert abs(np.mean(sizes) - 4.5) < 0.15 and max(sizes) <= 9
    assert choose_layers(pts, 0, g) == []
    with pytest.raises(Exception, match="layer_draw"):
        choose_layers(pts, 3, g, 0.5, "sometimes")


def test_enas_baseline_order():
    """ENAS's controller moves b towards R before taking the advantage; 'after' uses the old b."""
    b = EMABaseline(0.99, 0.0)
    b.update(0.5)
    assert b.value == pytest.approx(0.005)
    assert 0.5 - b.value == pytest.approx(0.495)  # 'before': advantage against the updated b
