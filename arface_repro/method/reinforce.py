"""REINFORCE for the Attention-Net (paper: ENAS-style).

Reward R = Feature-Net classification accuracy on the masked batch; loss = -(R - b) * log p(tau), where
tau is the whole batch's decisions (log p(tau) = sum of the per-image log-probabilities) and b is an
exponential moving average of R with decay 0.99 starting at 0. Optional entropy bonus.

Scaling: we divide log p(tau) by the batch size (a constant factor, absorbed by the learning rate) so
the step size does not depend on the batch size and so that the loss sums exactly across DDP ranks.
`reward="sample"` (per-image reward = whether that image was classified correctly) is an offered
variance-reduction variant; the faithful default is `reward="batch"`.

The log-probabilities and the loss are float32 (autocast off here and in `attention_net.log_prob`), also when
the Feature-Net trains in bf16/fp16.
"""

from __future__ import annotations

import torch


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


class EMABaseline:
    """b <- decay * b + (1 - decay) * R, starting at `init` (0 in the paper)."""

    def __init__(self, decay: float = 0.99, init: float = 0.0):
        self.decay = float(decay)
        self.value = float(init)

    def update(self, reward: float) -> float:
        self.value = self.decay * self.value + (1.0 - self.decay) * float(reward)
        return self.value

    def state_dict(self) -> dict:
        return {"decay": self.decay, "value": self.value}

    def load_state_dict(self, state: dict) -> None:
        self.decay = float(state["decay"])
        self.value = float(state["value"])


def reinforce_loss(
    logp: torch.Tensor,
    advantage,
    batch_size: int,
    entropy: torch.Tensor | None = None,
    entropy_weight: float = 0.0,
) -> torch.Tensor:
    """-(advantage * sum_i logp_i) / batch_size - entropy_weight * sum_i H_i / batch_size.

    `advantage` is a float (batch reward: R - b) or a tensor (N,) (per-image rewards minus b).
    `batch_size` is the GLOBAL batch size, so per-rank losses add up to the single-process loss.
    """
    with torch.autocast(logp.device.type, enabled=False):  # float32 even inside a mixed-precision region
        logp = _at_least_float32(logp)
        if torch.is_tensor(advantage):
            obj = (advantage.detach().to(logp) * logp).sum()
        else:
            obj = float(advantage) * logp.sum()
        loss = -obj / batch_size
        if entropy is not None and entropy_weight:
            loss = loss - entropy_weight * _at_least_float32(entropy).sum() / batch_size
        return loss
