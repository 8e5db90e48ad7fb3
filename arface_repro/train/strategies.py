"""One strategy per training method: what each method adds to the Feature-Net's training step.

`Trainer.train_step` is the same for every method: draw the step's random numbers, normalise the batch, let
the method `prepare` it (mask landmark patches, cut a square, arm hooks), forward + margin loss + Feature-Net
update, `after_forward` (disarm hooks), then `after_step` (ARFace: the Attention-Net's REINFORCE update). The
strategy is picked from the fixed registry `STRATEGIES` by `method.kind` (a config names a kind, never code):

| kind | class | the step |
|---|---|---|
| plain | `Plain` | the Feature-Net alone |
| random | `RandomPatches` | PickPatch: a mode (keep/drop per landmark patch) drawn uniformly; with `num_layers` > 0 the mask also multiplies feature maps |
| arface | `ARFace` | the Attention-Net samples the mode; after the Feature-Net step, REINFORCE with the batch accuracy as reward |
| fixed | `FixedMask` | diagnostic: the mask a rule gives (`fixed_mask`: oracle or drop), from the training set's occlusion flags |
| cutout | `Cutout` | a `cutout_size` square of the input set to 0 |
| dropblock | `DropBlock` | DropBlock hooks on the stages of `method.dropblock.stages` |

Each strategy also checks the config values that depend on the backbone or the data before any step
(`check_backbone`, `check_data`), builds its modules (`build`), and carries its part of a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn as nn

from arface_repro.errors import ConfigError
from arface_repro.method import patches as P
from arface_repro.method.attention_net import AttentionNet, entropy, log_prob, sample_modes
from arface_repro.method.baselines import DropBlockHooks, cutout_mask
from arface_repro.method.feature_masking import FeatureMasker, choose_layers
from arface_repro.method.reinforce import reinforce_loss
from arface_repro.train import acceleration as A
from arface_repro.train import distributed as D


def step_generator(seed: int, step: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of every random draw of step `step` (the same on every rank and on a resumed run)."""
    return torch.Generator(device).manual_seed((int(seed) * 1_000_003 + int(step) * 7919 + 12345) % (2**63 - 1))


@dataclass
class StepDraws:
    """The random numbers of one step, drawn for the global batch and sliced to this rank."""
    u_modes: torch.Tensor   # (b_local,) uniform: the mode of each image (random: directly; arface: by inversion)
    u_cut: torch.Tensor     # (b_local, 2) uniform: the Cutout square's centre
    layers: list            # the feature-map mask points masked this step (feature masking only)


class Strategy:
    """A training method's part of the step; the base class is the plain Feature-Net (it adds nothing)."""

    kind: ClassVar[str] = ""
    drops_patches: ClassVar[bool] = False   # masks landmark patches: the step record carries `drop_rate`
    uses_landmarks: ClassVar[bool] = False  # patch centres come from landmarks (the trainer says from where)

    def __init__(self, cfg: dict):
        self.cfg, self.m = cfg, cfg["method"]
        self.masker = None      # feature-map masker (random, arface with num_layers > 0)
        self.dropblock = None   # DropBlock hooks (dropblock)
        self.attn = None        # Attention-Net (arface)
        self.attn_ddp = None
        self.opt_a = None

    # ---------------------------------------------------------------- before the first step
    def check_backbone(self, backbone: nn.Module) -> None:
        """ConfigError for a config value the backbone cannot meet (mask points, DropBlock stages)."""

    def check_data(self, train_set, data_kind: str) -> None:
        """ConfigError for a training set the method cannot use."""

    def build(self, backbone: nn.Module, device: torch.device, compiled: bool) -> None:
        """The method's hooks and modules (before the backbone is compiled)."""

    def distribute(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Wrap the method's trained modules for data-parallel training (`wrap`: DistributedDataParallel)."""

    # ---------------------------------------------------------------- the step
    def draw_layers(self, gen: torch.Generator) -> list:
        """The mask points of this step, drawn from the step generator after the modes and Cutout centres."""
        return []

    def prepare(self, t: Any, x: torch.Tensor, lms, draws: StepDraws) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The Feature-Net's input for the step and the (b_local, 5) keep flags (None: no patch dropped)."""
        return x, None

    def after_forward(self) -> None:
        """Called after the Feature-Net's forward (hooks off)."""

    def after_step(self, t: Any, reward: float, correct: torch.Tensor, rec: dict) -> None:
        """Called after the Feature-Net's update with the step's reward (global batch accuracy); adds to `rec`."""

    # ---------------------------------------------------------------- checkpoints
    def checkpoint_state(self) -> dict:
        return {}

    def load_checkpoint_state(self, ck: dict) -> None:
        pass


class Plain(Strategy):
    kind = "plain"


class Cutout(Strategy):
    """Cutout: a `cutout_size` square (centre from the step's draws) of the normalised input set to 0."""

    kind = "cutout"

    def prepare(self, t, x, lms, draws):
        H, W = x.shape[-2:]
        cut = cutout_mask(x.shape[0], H, W, int(self.m["cutout_size"]), draws.u_cut.to(t.device, non_blocking=True))
        return (x * cut).contiguous(memory_format=t.memory_format), None


class DropBlock(Strategy):
    """DropBlock on the blocks of `method.dropblock.stages`, its keep probability scheduled over the steps."""

    kind = "dropblock"

    def check_backbone(self, backbone):
        stages = getattr(backbone, "stage_points", {})
        missing = [s for s in self.m["dropblock"]["stages"] if s not in stages]
        if missing:
            raise ConfigError(f"method.dropblock.stages: {self.cfg['model']['name']!r} has no stage {missing[0]!r} "
                              f"(it has {sorted(stages)})")

    def build(self, backbone, device, compiled):
        d = self.m["dropblock"]
        stages = [n for s in d["stages"] for n in backbone.stage_points[s]]
        hooks_cls = A.EagerDropBlockHooks if compiled else DropBlockHooks
        self.dropblock = hooks_cls(backbone, stages, d["block_size"], d["final_keep_prob"])

    def prepare(self, t, x, lms, draws):
        self.dropblock.set_progress(t.step / max(1, self.cfg["train"]["steps"] - 1))
        self.dropblock.generator = step_generator(self.cfg["seed"] + 1 + t.dist.rank, t.step, t.device)
        return x, None


class PatchMask(Strategy):
    """Methods that drop landmark patches: keep flags -> a mask on the input (and on feature maps)."""

    drops_patches = True

    def keep_flags(self, t, x, boxes, draws) -> torch.Tensor:
        raise NotImplementedError

    def prepare(self, t, x, lms, draws):
        H, W = x.shape[-2:]
        boxes = torch.from_numpy(P.patch_boxes(lms, self.m["patch_radius"], H, W)).to(t.device)
        keep = self.keep_flags(t, x, boxes, draws)
        mask = P.drop_mask(boxes, keep, H, W)
        x = (x * mask).contiguous(memory_format=t.memory_format)
        if self.masker:
            self.masker.arm(mask, draws.layers)
        return x, keep


class FeatureMasking(PatchMask):
    """PatchMask whose mask also multiplies the outputs of `num_layers` drawn residual blocks."""

    uses_landmarks = True

    def check_backbone(self, backbone):
        if self.m["num_layers"] > 0:
            points = list(getattr(backbone, "mask_points", []))
            if self.m["num_layers"] > len(points):
                raise ConfigError(f"method.num_layers={self.m['num_layers']} but {self.cfg['model']['name']!r} has only "
                                  f"{len(points)} maskable layers (residual blocks)")

    def build(self, backbone, device, compiled):
        if self.m["num_layers"] > 0:
            masker_cls = A.StaticFeatureMasker if compiled else FeatureMasker
            self.masker = masker_cls(backbone, getattr(backbone, "mask_points", []), self.m["mask_scale"])

    def draw_layers(self, gen):
        if not self.masker:
            return []
        return choose_layers(self.masker.points, self.m["num_layers"], gen, self.m["p_layer"], self.m["layer_draw"])

    def after_forward(self):
        if self.masker:
            self.masker.disarm()


class RandomPatches(FeatureMasking):
    """PickPatch ("random"): each image's mode drawn uniformly from the 31 valid modes."""

    kind = "random"

    def keep_flags(self, t, x, boxes, draws):
        modes = (draws.u_modes * P.NUM_MODES).long().clamp_max(P.NUM_MODES - 1).to(t.device)
        return P.modes_to_keep(modes)


class ARFace(FeatureMasking):
    """ARFace: the Attention-Net samples each image's mode; after the Feature-Net's step it is updated by
    REINFORCE with reward R = the Feature-Net's accuracy on the masked batch and the EMA baseline
    (`method.baseline_update`: before = ENAS's order, b moved towards R first; after = advantage against the old b)."""

    kind = "arface"

    def build(self, backbone, device, compiled):
        super().build(backbone, device, compiled)
        a = self.m["attention"]
        self.attn = AttentionNet(a["patch_size"], tuple(a["channels"])).to(device)
        opt = torch.optim.Adam if a["optimizer"] == "adam" else torch.optim.SGD
        self.opt_a = opt(self.attn.parameters(), lr=a["lr"], weight_decay=a["weight_decay"])
        self.attn_ddp = self.attn

    def distribute(self, wrap):
        self.attn_ddp = wrap(self.attn)

    def keep_flags(self, t, x, boxes, draws):
        self._logits = self.attn_ddp(x, boxes)
        self._modes = sample_modes(self._logits, draws.u_modes)
        return P.modes_to_keep(self._modes)

    def after_step(self, t, reward, correct, rec):
        m, W = self.m, t.dist.world_size
        if m["baseline_update"] == "before":  # ENAS: b is moved towards R first, then the advantage is R - b
            t.baseline.update(reward)
        b = t.baseline.value
        adv = reward - b if m["reward"] == "batch" else correct - b
        lp = log_prob(self._logits, self._modes)
        ent = entropy(self._logits) if m["entropy_weight"] else None
        loss_a = reinforce_loss(lp, adv, t.B, ent, m["entropy_weight"]) * W  # DDP averages over ranks
        self.opt_a.zero_grad(set_to_none=True)
        loss_a.backward()
        self.opt_a.step()
        pl = (loss_a.detach().double() / W).view(1).to(D.collective_device(t.dist, t.device))
        pl = D.all_reduce_sum(pl, t.dist).cpu()
        rec.update(reward=reward, baseline=b, policy_loss=float(pl[0]))
        if m["baseline_update"] == "after":
            t.baseline.update(reward)
        self._logits = self._modes = None

    def checkpoint_state(self):
        return {"attn": self.attn.state_dict(), "opt_a": self.opt_a.state_dict()}

    def load_checkpoint_state(self, ck):
        self.attn.load_state_dict(ck["attn"])
        self.opt_a.load_state_dict(ck["opt_a"])


class FixedMask(PatchMask):
    """Diagnostic (no Attention-Net, not in the paper): the keep flags a rule gives each training image from the
    set's occlusion flags (`fixed_mask`: oracle = drop the occludable patch iff occluded; drop = always)."""

    kind = "fixed"

    def check_data(self, train_set, data_kind):
        if getattr(train_set, "occluded", None) is None:
            raise ConfigError(f"method.kind=fixed (fixed_mask {self.m['fixed_mask']!r}) needs a synthetic training set "
                              f"with occlusion flags (data.kind = synthetic), not data.kind = {data_kind!r}")

    def keep_flags(self, t, x, boxes, draws):
        idx = t.batches.local_indices(t.step)
        return torch.from_numpy(P.fixed_keep_flags(self.m["fixed_mask"], t.train_set, idx)).to(t.device)


STRATEGIES: dict[str, type[Strategy]] = {c.kind: c for c in (Plain, RandomPatches, ARFace, FixedMask, Cutout, DropBlock)}


def strategy_for(cfg: dict) -> Strategy:
    """The strategy of `method.kind` (a validated config: the kind is one of `STRATEGIES`)."""
    kind = cfg["method"]["kind"]
    if kind not in STRATEGIES:
        raise ConfigError(f"method.kind: unknown method {kind!r}; one of {', '.join(STRATEGIES)}")
    return STRATEGIES[kind](cfg)

