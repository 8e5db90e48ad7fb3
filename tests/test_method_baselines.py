"""Cutout and DropBlock baselines."""

import torch
import torch.nn as nn

from arface_repro.method.baselines import DropBlockHooks, cutout_mask, dropblock


def test_cutout_square_inside_and_clipped():
    m = cutout_mask(2, 112, 112, 16, torch.tensor([[0.5, 0.5], [0.0, 0.0]]))
    assert (m[0] == 0).sum() == 256
    z = (m[0, 0] == 0).nonzero()
    assert z.min(0).values.tolist() == [48, 48] and z.max(0).values.tolist() == [63, 63]
    assert (m[1] == 0).sum() == 64  # centre at (0, 0): an 8x8 quarter remains


def test_dropblock_rate_and_identity():
    x = torch.ones(4, 8, 28, 28)
    assert torch.equal(dropblock(x, 1.0, 7), x)
    g = torch.Generator().manual_seed(0)
    y = dropblock(x, 0.75, 7, g)
    zero = (y == 0).float().mean().item()
    assert 0.15 < zero < 0.35  # ~ 1 - keep_prob of the units dropped
    assert abs(y.mean().item() - 1.0) < 1e-4  # rescaled by numel / ones


def test_dropblock_hooks_schedule_and_eval_noop():
    net = nn.Sequential(nn.Identity(), nn.Identity())
    h = DropBlockHooks(net, ["1"], 3, 0.75)
    h.set_progress(0.5)
    assert abs(h.keep_prob - 0.875) < 1e-12
    h.set_progress(1.0)
    x = torch.ones(2, 4, 14, 14)
    net.train()
    assert (net(x) == 0).any()
    net.eval()
    assert torch.equal(net(x), x)
