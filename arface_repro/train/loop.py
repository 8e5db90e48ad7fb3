"""The ARFace training loop (Feature-Net + Attention-Net with REINFORCE) and its baselines.

One step on a global batch (split evenly over processes); what a method adds to it is its strategy
(`train.strategies`, one class per `method.kind`):
1. ARFace: the Attention-Net scores the 5 landmark patches and a mode (keep/drop per patch, 31 valid
   modes) is sampled per image; Random (PickPatch): a mode drawn uniformly. Mask M multiplies the input
   and, when `num_layers` > 0, the outputs of randomly drawn mask points (feature-map masking).
   Cutout: a 16x16 square on the input. DropBlock: hooks on stage3/stage4.
2. Feature-Net step: margin-head cross-entropy on the masked batch, backward, optimizer step.
3. Attention-Net step (ARFace): reward R = accuracy (no-margin argmax) of the Feature-Net forward of
   step 2 on the masked batch, i.e. of the Feature-Net frozen at its pre-update weights -- the policy
   loss -(R - b) log p(tau) never reaches the Feature-Net's parameters. The baseline follows ENAS's code
   (`method.baseline_update: before`): b <- 0.99 b + 0.01 R first, then the advantage R - b; `after`
   takes the advantage against the old b.
Every random draw of a step comes from a generator seeded by (seed, step), drawn for the GLOBAL batch
and sliced per rank, so 1 process and N processes see the same decisions and a resumed run repeats
an uninterrupted one.

Device path (`arface_repro.train.acceleration`): mixed precision (`train.amp`), channels-last on CUDA, optional
`torch.compile`; batches arrive as uint8 (pinned when on CUDA, copied without blocking) and are normalised,
masked and augmented on the training device. The step's global statistics (loss, accuracy = the reward, drop
counts) are reduced on the device of the process group's backend (NCCL: the GPU; gloo: the CPU).
"""

from __future__ import annotations

import json
import math
import random
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from arface_repro.backbones.heads import create_head
from arface_repro.backbones.registry import create_model
from arface_repro.errors import ArfaceError, ConfigError, FormatError
from arface_repro.method import patches as P
from arface_repro.method.attention_net import greedy_modes
from arface_repro.method.reinforce import EMABaseline
from arface_repro.train import acceleration as A
from arface_repro.train import distributed as D
from arface_repro.train.checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from arface_repro.train.config import load_config
from arface_repro.train.data import GlobalBatches, build_train_set, build_val_set, fetch, next_batch, worker_loader
from arface_repro.train.strategies import StepDraws, Strategy, step_generator, strategy_for
from arface_repro.utils import launcher_env
from arface_repro.utils.atomic import atomic_open
from arface_repro.utils.devices import check_device
from arface_repro.utils.folder_lock import FolderLock
from arface_repro.utils.outputs import Output, check_outputs
from arface_repro.utils.progress import progress
from arface_repro.utils.textfile import read_lines


@dataclass
class TrainResult:
    history: list = field(default_factory=list)  # one dict per step (this process's view of global values)
    metrics: dict = field(default_factory=dict)  # final evaluation (built-in verification or verify_fn)
    out_dir: Path | None = None
    checkpoint: Path | None = None
    process_group: str = ""  # the torch.distributed backend the run used ("nccl", "gloo"), "" without a group


class NonFiniteLossError(ArfaceError):
    """The training loss became NaN or infinite: training stops (no checkpoint of the diverged state is written)."""


def build_backbone(cfg: dict) -> nn.Module:
    """`model.name` is a registered architecture (`arface list-models`); a config never imports code."""
    name, kwargs = cfg["model"]["name"], dict(cfg["model"].get("kwargs") or {})
    try:
        return create_model(name, **kwargs)
    except ArfaceError:
        raise
    except (TypeError, ValueError, RuntimeError) as exc:  # a constructor refusing a value of model.kwargs
        raise ConfigError(f"model.kwargs {kwargs} rejected by {name!r}: {' '.join(str(exc).split())[:200]}") from None


def check_backbone_fits(backbone: nn.Module, cfg: dict) -> None:
    """Config values that depend on the backbone, checked before any step: mask points and DropBlock stages."""
    strategy_for(cfg).check_backbone(backbone)


class FeatureNet(nn.Module):
    """Backbone + margin head; forward returns (margin logits, no-margin logits)."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x, labels):
        emb = self.backbone(x)
        return self.head(emb, labels), self.head.predict(emb).detach()


def normalise(images_uint8: torch.Tensor, mean: float = 128.0, std: float = 128.0,
              memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
    """N x H x W x 3 uint8 RGB -> N x 3 x H x W float, (x - mean) / std (paper: 128 and 128).

    Contiguous NCHW by default: on CPU, channels-last inputs hit a oneDNN crash (double free) in conv backward
    on this torch build. `memory_format=torch.channels_last` (CUDA) keeps the NHWC layout the images come in."""
    return ((images_uint8.permute(0, 3, 1, 2).float() - float(mean)) / float(std)).contiguous(memory_format=memory_format)


def lr_lambda(tcfg: dict) -> Callable[[int], float]:
    steps, warm = int(tcfg["steps"]), int(tcfg["warmup_steps"])
    miles = [int(round(f * steps)) if f < 1 else int(f) for f in tcfg["milestones"]]

    def fn(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if tcfg["schedule"] == "cosine":
            t = (step - warm) / max(1, steps - warm)
            return 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))
        if tcfg["schedule"] == "multistep":
            return float(tcfg["gamma"]) ** sum(step >= m for m in miles)
        return 1.0

    return fn


def _optimizer(params, tcfg: dict) -> torch.optim.Optimizer:
    if tcfg["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=tcfg["lr"], momentum=tcfg["momentum"], weight_decay=tcfg["weight_decay"])
    return torch.optim.AdamW(params, lr=tcfg["lr"], weight_decay=tcfg["weight_decay"])


class Trainer:
    """Holds models, optimizers and state; `run()` trains to `train.steps`. Use `train()` below."""

    def __init__(self, cfg: dict, verify_fn: Callable | None = None, on_step: Callable | None = None, datasets=None):
        self.cfg = cfg
        t, m = cfg["train"], cfg["method"]
        dev = t["device"]
        self.device = torch.device("cuda" if (dev == "auto" and torch.cuda.is_available()) else ("cpu" if dev == "auto" else dev))
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"train.device={dev}: CUDA is not available on this machine (torch {torch.__version__})")
        if self.device.type == "cuda" and dev != "auto":
            check_device(dev, "train.device")
        self.dist = D.setup(self.device.type)
        if self.device.type == "cuda":  # a process group's rank takes the GPU of its LOCAL_RANK; else cuda:N as given
            index = self.dist.local_rank if self.dist.enabled else (self.device.index or 0)
            self.device = torch.device("cuda", index)
            torch.cuda.set_device(self.device)
        self.precision = A.resolve_precision(t["amp"], self.device)
        self.memory_format = A.resolve_memory_format(t["memory_format"], self.device)
        W = self.dist.world_size
        if int(t["batch_size"]) % W:
            raise ConfigError(f"train.batch_size={t['batch_size']} is not divisible by the {W} processes")
        self.B, self.b_local = int(t["batch_size"]), int(t["batch_size"]) // W
        seed = int(cfg["seed"])
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        self.out_dir = run_folder(cfg)
        if self.dist.is_main:  # a bad output folder is found now, not at the first checkpoint
            check_outputs([Output(self.out_dir, "out_dir" if cfg["out_dir"] else "out_dir (runs/<name>)", kind="dir")])
        self.verify_fn, self.on_step = verify_fn, on_step
        self.train_set: Any  # any dataset `fetch` reads (synthetic, RecordIO, image folder, or one given)
        self.val_set: Any  # the held-out synthetic set, or None
        self.train_set, self.val_set = datasets if datasets is not None else (build_train_set(cfg), None)
        self.batches = GlobalBatches(len(self.train_set), self.B, seed, self.dist.rank, W)
        self.strategy: Strategy = strategy_for(cfg)
        self.strategy.check_data(self.train_set, cfg["data"]["kind"])   # found before any step
        source = getattr(self.train_set, "landmark_source", None)
        if source and self.dist.is_main and not t["quiet"] and self.strategy.uses_landmarks:
            print(f"{cfg['name']}: patch centres from {source}", file=sys.stderr)
        backbone = build_backbone(cfg)
        self.strategy.check_backbone(backbone)
        if self.b_local < 2 and any(isinstance(mod, nn.modules.batchnorm._BatchNorm) for mod in backbone.modules()):
            raise ConfigError(f"train.batch_size={self.B}: {self.b_local} image per process; the model's batch "
                              f"normalisation needs at least 2 images per process in training")
        num_classes = int(getattr(self.train_set, "num_classes", 0)) or int(np.max(self.train_set.labels)) + 1
        emb_dim = self._embedding_dim(backbone)
        head = create_head(cfg["head"]["name"], emb_dim, num_classes, **(cfg["head"].get("kwargs") or {}))
        # Module.to takes memory_format (torch's documentation); its stub's overloads leave the keyword out
        self.fnet = FeatureNet(backbone, head).to(self.device, memory_format=self.memory_format)  # type: ignore[call-overload]
        compiled = bool(t["compile"])
        self.strategy.build(backbone, self.device, compiled)   # hooks before the backbone is compiled
        if compiled:
            A.compile_backbone(backbone)
        self.fnet_ddp = self.fnet
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.fnet_ddp = nn.parallel.DistributedDataParallel(self.fnet, device_ids=ids)
            self.strategy.distribute(lambda module: nn.parallel.DistributedDataParallel(module, device_ids=ids))
        self.opt = _optimizer(self.fnet.parameters(), t)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_lambda(t))
        self.scaler = self.precision.grad_scaler()
        self.baseline = EMABaseline(m["baseline_decay"], 0.0)  # ARFace's; in every checkpoint (format unchanged)
        self.step = 0
        self.ckpt_step = 0  # step of the last checkpoint this run wrote or resumed from
        self.history: list[dict] = []
        self.ckpt_path = self.out_dir / "checkpoint_last.pt"
        self.log_path = self.out_dir / "metrics.jsonl"
        self._maybe_resume()

    @property
    def attn(self) -> nn.Module | None:
        """ARFace's Attention-Net (None for the other methods)."""
        return self.strategy.attn

    # ------------------------------------------------------------------ setup helpers
    @staticmethod
    def _embedding_dim(backbone: nn.Module) -> int:
        was = backbone.training
        backbone.eval()
        with torch.no_grad():
            d = backbone(torch.zeros(2, 3, 112, 112)).shape[1]
        backbone.train(was)
        return int(d)

    def _maybe_resume(self) -> None:
        r = self.cfg["train"]["resume"]
        if not r:
            if self.dist.is_main and self.log_path.exists():
                self.log_path.unlink()
            return
        path = self.ckpt_path if r == "auto" else Path(r)
        if r == "auto" and not path.exists():
            return
        ck = load_checkpoint(path)
        self.fnet.load_state_dict(ck["fnet"])
        self.opt.load_state_dict(ck["opt"])
        self.sched.load_state_dict(ck["sched"])
        if self.scaler.is_enabled() and ck.get("scaler"):  # fp16: the scale and its growth tracker go on
            self.scaler.load_state_dict(ck["scaler"])
        self.strategy.load_checkpoint_state(ck)
        self.baseline.load_state_dict(ck["baseline"])
        self.step = self.ckpt_step = int(ck["step"])
        self.history = list(ck.get("history", []))
        set_rng_state(ck["rng"])
        if self.dist.is_main and self.log_path.exists():  # drop log lines written after the checkpoint
            keep = [ln for ln in _log_lines(self.log_path) if _log_step(ln, self.log_path) <= self.step]
            with atomic_open(self.log_path, "w") as fh:
                fh.write("".join(k + "\n" for k in keep))

    def save(self) -> Path | None:
        if not self.dist.is_main:
            return None
        payload = {
            "config": self.cfg, "step": self.step, "fnet": self.fnet.state_dict(), "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(), "scaler": self.scaler.state_dict(), "baseline": self.baseline.state_dict(),
            "history": self.history,
        }
        payload.update(self.strategy.checkpoint_state())
        path = save_checkpoint(self.ckpt_path, payload)
        self.ckpt_step = self.step
        return path

    # ------------------------------------------------------------------ one step
    def train_step(self, batch=None) -> dict:
        """One step; `batch` = (images, labels, landmarks) of this rank, fetched here when None."""
        cfg, strategy = self.cfg, self.strategy
        W, r = self.dist.world_size, self.dist.rank
        gen = step_generator(cfg["seed"], self.step)
        u_modes = torch.rand(self.B, generator=gen)[r::W].contiguous()
        u_cut = torch.rand(self.B, 2, generator=gen)[r::W].contiguous()
        draws = StepDraws(u_modes, u_cut, strategy.draw_layers(gen))
        imgs, labels, lms = batch if batch is not None else fetch(self.train_set, self.batches.local_indices(self.step))
        imgs, labels = imgs.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
        x = normalise(imgs, cfg["data"]["pixel_mean"], cfg["data"]["pixel_std"], self.memory_format)
        x, keep = strategy.prepare(self, x, lms, draws)
        self.fnet_ddp.train()
        with self.precision.autocast():
            logits, pred = self.fnet_ddp(x, labels)  # the head's logits are float32 (autocast off inside it)
        loss = F.cross_entropy(logits.float(), labels)
        strategy.after_forward()
        # global statistics of this step before any update: every rank sees the same sums, so a non-finite
        # loss stops all of them at the same step (and the policy step uses the same reward everywhere).
        # Reduced where the group's backend reduces (NCCL: on the GPU), then read once.
        correct = (pred.argmax(1) == labels).float()
        parts = [(loss.detach().double() * len(labels)).view(1), correct.sum().double().view(1)]
        if keep is not None:
            parts.append((~keep).float().sum(0).double())
        stats = torch.cat(parts).to(D.collective_device(self.dist, self.device))
        stats = D.all_reduce_sum(stats, self.dist).cpu()
        if not math.isfinite(float(stats[0])):
            raise NonFiniteLossError(
                f"training loss is {float(stats[0]) / self.B} at step {self.step + 1} of {cfg['train']['steps']} "
                f"(lr {self.opt.param_groups[0]['lr']:.6g}); training stopped before updating the weights. Lower "
                f"train.lr, add warm-up (train.warmup_steps) or gradient clipping (train.grad_clip)"
                + (f"; the last checkpoint is {self.ckpt_path} (step {self.ckpt_step})" if self.ckpt_step else ""))
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg["train"]["grad_clip"]:
            self.scaler.unscale_(self.opt)
            nn.utils.clip_grad_norm_(self.fnet.parameters(), cfg["train"]["grad_clip"])
        self.scaler.step(self.opt)
        self.scaler.update()
        lr = self.opt.param_groups[0]["lr"]
        with warnings.catch_warnings():  # fp16: a step the scaler skipped (overflow) still advances the schedule
            warnings.filterwarnings("ignore", message=re.escape("Detected call of `lr_scheduler.step()` before"))
            self.sched.step()
        R = float(stats[1]) / self.B
        rec = {"step": self.step + 1, "loss": float(stats[0]) / self.B, "acc": R, "lr": lr}
        if self.scaler.is_enabled():  # fp16: the scale after this step (it halves when a step overflowed and was skipped)
            rec["grad_scale"] = float(self.scaler.get_scale())
        if keep is not None:
            rec["drop_rate"] = (stats[2:] / self.B).tolist()
        strategy.after_step(self, R, correct, rec)
        self.step += 1
        return rec

    def fixed_keep(self, idx: np.ndarray) -> np.ndarray:
        """kind fixed: the (N, 5) keep flags of training images `idx` (the occlusion flags come from the set)."""
        return P.fixed_keep_flags(self.cfg["method"]["fixed_mask"], self.train_set, idx)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def embed(self, images: np.ndarray, landmarks: np.ndarray, batch: int = 256,
              keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Embeddings (N, D) of uint8 images; ARFace masks the input with the argmax mode (also returned).

        `keep` (N, 5) bool: mask the input with these keep flags instead (any method; a diagnostic test mask,
        e.g. the oracle's), and return no modes."""
        m = self.cfg["method"]
        self.fnet.eval()
        if self.attn is not None:
            self.attn.eval()
        feats, modes_all = [], []
        for s in range(0, len(images), batch):
            x = normalise(torch.from_numpy(np.ascontiguousarray(images[s : s + batch])).to(self.device),
                          self.cfg["data"]["pixel_mean"], self.cfg["data"]["pixel_std"], self.memory_format)
            if keep is not None:
                boxes = torch.from_numpy(P.patch_boxes(landmarks[s : s + batch], m["patch_radius"], *x.shape[-2:])).to(self.device)
                k = torch.from_numpy(np.asarray(keep[s : s + batch], bool)).to(self.device)
                x = (x * P.drop_mask(boxes, k, *x.shape[-2:])).contiguous(memory_format=self.memory_format)
            elif self.attn is not None and m["inference_mask"]:
                boxes = torch.from_numpy(P.patch_boxes(landmarks[s : s + batch], m["patch_radius"], *x.shape[-2:])).to(self.device)
                modes = greedy_modes(self.attn(x, boxes))
                x = (x * P.drop_mask(boxes, P.modes_to_keep(modes), *x.shape[-2:])).contiguous(memory_format=self.memory_format)
                modes_all.append(modes.cpu().numpy())
            feats.append(self.fnet.backbone(x).float().cpu().numpy())
        self.fnet.train()
        if self.attn is not None:
            self.attn.train()
        return np.concatenate(feats), (np.concatenate(modes_all) if modes_all else None)

    @torch.no_grad()
    def policy_probs(self, images: np.ndarray, landmarks: np.ndarray, batch: int = 256) -> np.ndarray:
        """ARFace: the Attention-Net's distribution over the 31 modes (N, 31) float64, in eval mode."""
        if self.attn is None:
            raise ConfigError("policy_probs needs an ARFace run (method.kind = arface)")
        m = self.cfg["method"]
        self.attn.eval()
        out = []
        for s in range(0, len(images), batch):
            x = normalise(torch.from_numpy(np.ascontiguousarray(images[s : s + batch])).to(self.device),
                          self.cfg["data"]["pixel_mean"], self.cfg["data"]["pixel_std"], self.memory_format)
            boxes = torch.from_numpy(P.patch_boxes(landmarks[s : s + batch], m["patch_radius"], *x.shape[-2:])).to(self.device)
            out.append(torch.softmax(self.attn(x, boxes).double(), -1).cpu().numpy())
        self.attn.train()
        return np.concatenate(out)

    def evaluate(self) -> dict:
        if self.verify_fn is not None:
            return dict(self.verify_fn(self))
        # the verification set is drawn with cv2: loaded only when a run verifies on synthetic data
        from arface_repro.train.verification import synthetic_verification

        if self.val_set is None:
            self.val_set = build_val_set(self.cfg)
        return synthetic_verification(self, self.val_set, self.cfg["data"]["val"]["num_pairs"], self.cfg["seed"]) if self.val_set is not None else {}

    # ------------------------------------------------------------------ loop
    def _log(self, rec: dict) -> None:
        if self.dist.is_main:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(self.log_path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(rec) + "\n")
            except OSError as exc:  # a full disk: name the file (a buffered write's error carries no name)
                raise OSError(exc.errno, exc.strerror or str(exc), str(self.log_path)) from None

    def run(self) -> TrainResult:
        t = self.cfg["train"]
        total = int(t["steps"])
        bar = None
        if self.dist.is_main and not t["quiet"]:

            bar = progress(total=total, initial=self.step, desc=self.cfg["name"])
        eval_rec = {}
        nw = int(self.cfg["data"]["num_workers"])
        loader = None
        if nw > 0 and self.step < total:
            loader = iter(worker_loader(self.train_set, self.batches, self.step, total, nw,
                                        pin_memory=self.device.type == "cuda"))
        try:
            while self.step < total:
                rec = self.train_step(next_batch(loader) if loader is not None else None)
                self.history.append(rec)
                if self.on_step is not None:
                    self.on_step(self, rec)
                if t["log_every"] and (self.step % t["log_every"] == 0 or self.step == total):
                    self._log(rec)
                    if bar is not None:
                        bar.set_postfix(loss=f"{rec['loss']:.3f}", acc=f"{rec['acc']:.3f}")
                if t["eval_every"] and self.step % t["eval_every"] == 0 and self.step < total and self.dist.is_main:
                    self._log({"step": self.step, "eval": self.evaluate()})
                if t["ckpt_every"] and self.step % t["ckpt_every"] == 0:
                    self.save()
                if bar is not None:
                    bar.update(1)
            if self.dist.is_main:  # evaluation runs on rank 0 only (its BN statistics; other ranks get {})
                eval_rec = self.evaluate()
                self._log({"step": self.step, "eval": eval_rec})
            ck = self.save()
            D.barrier(self.dist)
        finally:
            if bar is not None:
                bar.close()
        return TrainResult(self.history, eval_rec, self.out_dir, ck, self.dist.backend if self.dist.enabled else "")

    def close(self) -> None:
        D.teardown(self.dist)


def train(config, overrides=(), *, verify_fn=None, on_step=None, datasets=None) -> TrainResult:
    """Train from a config (YAML path, dict, or already-loaded config) and return history + final metrics.

    `verify_fn(trainer) -> dict` replaces the built-in synthetic pair verification; `on_step(trainer, rec)`
    is called after every step; `datasets=(train_set, val_set)` bypasses building them from the config.
    The output folder is locked for the run (`utils.folder_lock`, rank 0): a second run into the same folder
    stops at once with a ConfigError naming the folder and the holder.
    """
    cfg = load_config(config, overrides)
    lock = None
    if launcher_env.rank() == 0:  # the process that writes the folder holds it for the whole run
        out_dir = run_folder(cfg)
        check_outputs([Output(out_dir, "out_dir" if cfg["out_dir"] else "out_dir (runs/<name>)", kind="dir")])
        lock = FolderLock(out_dir, "arface train").acquire()
    try:
        try:
            trainer = Trainer(cfg, verify_fn=verify_fn, on_step=on_step, datasets=datasets)
        except ConfigError as exc:  # values that only the model or the data can check: name the config file too
            if isinstance(config, (str, Path)) and not str(exc).startswith(str(config)):
                raise ConfigError(f"{config}: {exc}") from None
            raise
        try:
            return trainer.run()
        finally:
            trainer.close()
    finally:
        if lock is not None:
            lock.release()


def run_folder(cfg: dict) -> Path:
    """The output folder of a run: `out_dir`, or runs/<name>."""
    return Path(cfg["out_dir"] or Path("runs") / cfg["name"])


def _log_lines(path: Path) -> list[str]:
    return [ln for ln in read_lines(path, "metrics log") if ln.strip()]


def _log_step(line: str, path: Path) -> int:
    """The step of a metrics.jsonl line (FormatError naming the file when it is not one of ours)."""
    try:
        rec = json.loads(line)
        step = rec.get("step", 0) if isinstance(rec, dict) else None
        if isinstance(step, bool) or not isinstance(step, int):
            raise ValueError
    except (ValueError, RecursionError):
        raise FormatError(f"{path}: a line is not a metrics record with an integer step ({line[:60]!r}); "
                          f"move the file away to resume") from None
    return step
