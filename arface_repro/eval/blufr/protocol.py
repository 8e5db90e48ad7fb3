"""BLUFR on LFW (Liao et al. 2014): the official EvalROC.m / OpenSetROC.m, ported exactly
(`arface_repro.eval.blufr.metric`)."""

from __future__ import annotations

import sys

import numpy as np

from arface_repro.errors import ConfigError
from arface_repro.eval.blufr.config import load_blufr_config, match_image_list
from arface_repro.eval.image_list import list_images
from arface_repro.eval.protocols import register_kind
from arface_repro.eval.protocols.base import ImageRequest, Protocol
from arface_repro.utils.argtypes import positive_int


@register_kind("blufr")
class BLUFR(Protocol):
    name = "blufr"
    summary = "BLUFR on LFW: VR@FAR=0.1% and DIR@FAR=1% rank 1, (mean - std) over 10 trials"

    @classmethod
    def add_arguments(cls, p) -> None:
        g = p.add_argument_group("blufr options")
        g.add_argument("--config", metavar="FILE", help="blufr_lfw_config.mat" + cls.layout_default("config"))
        g.add_argument("--trials", help="trials to run, 1-based, comma-separated (default all 10)")
        g.add_argument("--trial-workers", type=positive_int, default=None,
                       help="trial processes (default one per CPU)")
        cls.add_flip_argument(g)

    def config(self):
        if getattr(self, "_config", None) is None:
            self._config = load_blufr_config(self.path("config", self.opts.config, option="config"))
        return self._config

    def trials(self) -> list[int] | None:
        """The 0-based trials of --trials (None: all), checked against the config: 1..n_trials, no repeats."""
        text = self.opts.trials
        if text is None:
            return None
        items = [t.strip() for t in str(text).split(",")]
        try:
            asked = [int(t) for t in items]
        except ValueError:
            raise ConfigError(f"--trials must be comma-separated trial numbers, got {text!r}") from None
        n = self.config().n_trials
        bad = [t for t in asked if not 1 <= t <= n]
        if bad or not asked:
            raise ConfigError(f"--trials {text!r}: trials are numbered 1..{n} in {self.files.get('config', 'the config')}"
                              + (f"; got {bad[0]}" if bad else ""))
        dup = sorted({t for t in asked if asked.count(t) > 1})
        if dup:
            raise ConfigError(f"--trials {text!r}: trial {dup[0]} is listed twice (each trial counts once)")
        return [t - 1 for t in asked]

    def check_options(self) -> None:
        self.trials()

    def images(self) -> ImageRequest:
        if self.data_root is None:
            raise ConfigError("--model needs --data-root (the LFW crops, Name/Name_0001.jpg)")
        names = set(self.config().image_list)
        return ImageRequest(self.data_root, [p for p in list_images(self.data_root) if p.rsplit("/", 1)[-1] in names])

    def evaluate(self, store) -> dict:
        from arface_repro.eval.blufr.metric import (  # numba kernels (blufr.passes) at import time: only when evaluating
            OSI_FARS,
            RANKS,
            VERIFY_FARS,
            evaluate_blufr,
        )

        cfg = self.config()
        rows = match_image_list(cfg.image_list, store.paths.tolist(), store.source)
        flip = self.flip_mode(store)
        feats = store.combined(flip)[rows]
        progress = None
        if not getattr(self.opts, "quiet", True):
            def progress(t):
                print(f"  BLUFR trial {t + 1} done", file=sys.stderr)
        res = evaluate_blufr(feats, cfg, trials=self.trials(), progress=progress, workers=self.opts.trial_workers)
        curves = {"verification": {"far": VERIFY_FARS.tolist(), "vr": res.vr.tolist()},
                  "open_set": {"far": OSI_FARS.tolist(), "ranks": RANKS.tolist(), "dir": res.dir.tolist()},
                  "roc": {"fpr": VERIFY_FARS[1:].tolist(), "tpr": np.mean(res.vr, axis=0)[1:].tolist()}}
        return self.record(dict(res.metrics), per_trial=dict(res.per_trial), curves=curves,
                           extra={"aggregate": "(mean - std, ddof 1) x 100 over trials", "flip": flip})
