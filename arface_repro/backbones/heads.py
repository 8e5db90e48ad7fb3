"""Classification heads for training the Feature-Net.

`MarginHead` is the combined-margin form  s * (cos(m1*theta + m2) - m3)  on the target class and
s * cos(theta) elsewhere (features and class weights L2-normalised):
- AM-Softmax / CosFace: m1=1, m2=0, m3=m (paper: s=30, m=0.4; CosFace paper: s=64, m=0.35)
- ArcFace: m1=1, m2=m (0.5), m3=0, evaluated in the exact-gradient form
  cos(theta+m) = cos(theta)cos(m) - sin(theta)sin(m), sin(theta) = sqrt(1 - cos^2), and where
  theta + m > pi (cos(theta) < cos(pi - m)) the monotone fallback cos(theta) - m*sin(m) (insightface's
  `mm`, keeps the target logit decreasing in theta).
- m1 != 1 falls back to acos (combined margin as in insightface).
`SphereFaceHead` is A-Softmax (m=4): psi(theta) = (-1)^k cos(m theta) - 2k for theta in [k pi/m,
(k+1) pi/m], feature norm kept, with the lambda annealing of the reference Caffe/PyTorch code:
lambda = max(lambda_min, base * (1 + gamma * it) ** -power) and target logit
|x| (lambda cos(theta) + psi(theta)) / (1 + lambda).
`SoftmaxHead` is a plain fully-connected layer with bias.
Every head has `forward(emb, labels) -> logits` (margins applied) and `predict(emb) -> logits` (no
margin; argmax = predicted class, used for accuracy and the REINFORCE reward).

Precision: a head computes in float32 whatever the backbone ran in. Under mixed precision (`torch.autocast`,
bf16 or fp16) its input is cast up and autocast is switched off inside it, so the normalisation, cos(theta),
the margin, the logits (and the softmax of the loss after them) are float32: bf16 resolves cos(theta) near 1
in steps of 2^-8, the size of the margins' effect there. Without autocast the extra context is a no-op (the
same float32 arithmetic as before).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from arface_repro.errors import ConfigError


def float32(method):
    """Run a head method with autocast off for the input's device and the embedding cast to float32."""
    import functools

    @functools.wraps(method)
    def wrapper(self, emb: torch.Tensor, *args, **kwargs):
        with torch.autocast(emb.device.type, enabled=False):
            return method(self, emb.float(), *args, **kwargs)

    return wrapper


class MarginHead(nn.Module):
    def __init__(self, in_features: int, num_classes: int, s: float = 30.0, m1: float = 1.0, m2: float = 0.0, m3: float = 0.4):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.normal_(self.weight, std=0.01)
        self.s, self.m1, self.m2, self.m3 = float(s), float(m1), float(m2), float(m3)

    @float32
    def predict(self, emb: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(emb.float()), F.normalize(self.weight.float()))

    def target_logit(self, cos: torch.Tensor) -> torch.Tensor:
        m1, m2, m3 = self.m1, self.m2, self.m3
        if m1 == 1.0 and m2 == 0.0:
            return cos - m3
        if m1 == 1.0:
            sin = torch.sqrt((1.0 - cos * cos).clamp_min(0.0))
            phi = cos * math.cos(m2) - sin * math.sin(m2)
            th, mm = math.cos(math.pi - m2), math.sin(math.pi - m2) * m2
            return torch.where(cos > th, phi, cos - mm) - m3
        theta = torch.acos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
        return torch.cos(m1 * theta + m2) - m3

    @float32
    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = self.predict(emb).clamp(-1.0, 1.0)
        idx = labels.view(-1, 1)
        tgt = self.target_logit(cos.gather(1, idx))
        return self.s * cos.scatter(1, idx, tgt)


class SphereFaceHead(nn.Module):
    iteration: torch.Tensor  # a buffer (saved with the head): the step count the margin's lambda anneals over

    def __init__(self, in_features: int, num_classes: int, m: int = 4, base: float = 1000.0, gamma: float = 0.12, power: float = 1.0, lambda_min: float = 5.0):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.normal_(self.weight, std=0.01)
        self.m, self.base, self.gamma, self.power, self.lambda_min = int(m), base, gamma, power, lambda_min
        self.register_buffer("iteration", torch.zeros((), dtype=torch.long))

    @property
    def lamb(self) -> float:
        return max(self.lambda_min, self.base * (1.0 + self.gamma * float(self.iteration)) ** (-self.power))

    @float32
    def predict(self, emb: torch.Tensor) -> torch.Tensor:
        return F.linear(F.normalize(emb.float()), F.normalize(self.weight.float())) * emb.float().norm(dim=1, keepdim=True)

    @float32
    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = emb.float()
        norm = x.norm(dim=1, keepdim=True)
        cos = F.linear(F.normalize(x), F.normalize(self.weight.float())).clamp(-1.0, 1.0)
        idx = labels.view(-1, 1)
        c = cos.gather(1, idx)
        theta = torch.acos(c.clamp(-1 + 1e-7, 1 - 1e-7))
        k = torch.floor(self.m * theta / math.pi).detach()
        sign = 1.0 - 2.0 * torch.remainder(k, 2)
        # cos(m theta) as the Chebyshev polynomial of c (exact gradient, as the reference code does for m=4)
        cos_m = _chebyshev(c, self.m)
        psi = sign * cos_m - 2.0 * k
        lam = self.lamb
        tgt = (lam * c + psi) / (1.0 + lam)
        if self.training:
            self.iteration += 1
        return cos.scatter(1, idx, tgt) * norm


def _chebyshev(c: torch.Tensor, m: int) -> torch.Tensor:
    t0, t1 = torch.ones_like(c), c
    if m == 0:
        return t0
    for _ in range(m - 1):
        t0, t1 = t1, 2 * c * t1 - t0
    return t1


class SoftmaxHead(nn.Module):
    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(in_features, num_classes)

    @float32
    def predict(self, emb: torch.Tensor) -> torch.Tensor:
        return self.fc(emb.float())

    @float32
    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.fc(emb.float())


HEADS = ("softmax", "sphereface", "cosface", "amsoftmax", "arcface", "combined")

# keyword arguments each head takes, with the range of each value: (lowest, highest, integer?)
HEAD_KWARGS: dict[str, dict[str, tuple[float, float, bool]]] = {
    "softmax": {},
    "sphereface": {"m": (1, 16, True), "base": (0.0, math.inf, False), "gamma": (0.0, math.inf, False),
                   "power": (0.0, math.inf, False), "lambda_min": (0.0, math.inf, False)},
    "amsoftmax": {"s": (1e-6, math.inf, False), "m": (0.0, 2.0, False)},
    "cosface": {"s": (1e-6, math.inf, False), "m": (0.0, 2.0, False)},
    "arcface": {"s": (1e-6, math.inf, False), "m": (0.0, math.pi, False)},
    "combined": {"s": (1e-6, math.inf, False), "m1": (1e-6, 16.0, False), "m2": (0.0, math.pi, False),
                 "m3": (0.0, 2.0, False)},
}


def check_head_kwargs(name: str, kwargs) -> None:
    """ConfigError unless `name` is a head and every keyword is one it takes, with a finite value in range."""
    if not isinstance(name, str) or name.lower() not in HEAD_KWARGS:
        raise ConfigError(f"unknown head {name!r}; expected one of {HEADS}")
    allowed = HEAD_KWARGS[name.lower()]
    for key, value in dict(kwargs or {}).items():
        if key not in allowed:
            raise ConfigError(f"head {name!r} takes no argument {key!r}; it takes {sorted(allowed) or 'none'}")
        lo, hi, integer = allowed[key]
        ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type or not math.isfinite(value) or not lo <= value <= hi:
            kind = "an integer" if integer else "a finite number"
            raise ConfigError(f"head {name!r} argument {key!r} must be {kind} in [{lo}, {hi}], got {value!r}")


def create_head(name: str, in_features: int, num_classes: int, **kw) -> nn.Module:
    """Build a head by name; keyword values override the defaults (s, m, m1/m2/m3, lambda schedule).

    Unknown keywords and out-of-range values are errors (`check_head_kwargs`), never silently ignored.
    """
    check_head_kwargs(name, kw)
    name = name.lower()
    if name == "softmax":
        return SoftmaxHead(in_features, num_classes)
    if name == "sphereface":
        return SphereFaceHead(in_features, num_classes, **kw)
    if name == "amsoftmax":
        return MarginHead(in_features, num_classes, s=kw.get("s", 30.0), m3=kw.get("m", 0.4))
    if name == "cosface":
        return MarginHead(in_features, num_classes, s=kw.get("s", 64.0), m3=kw.get("m", 0.35))
    if name == "arcface":
        return MarginHead(in_features, num_classes, s=kw.get("s", 64.0), m2=kw.get("m", 0.5), m3=0.0)
    return MarginHead(in_features, num_classes, s=kw.get("s", 64.0), m1=kw.get("m1", 1.0), m2=kw.get("m2", 0.0),
                      m3=kw.get("m3", 0.0))
