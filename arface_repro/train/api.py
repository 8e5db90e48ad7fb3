"""Programmatic entry point for table reproduction: train a config and return its metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from arface_repro.train.loop import train


def train_and_evaluate(
    config: str | Path | dict,
    overrides: Iterable[str] = (),
    *,
    out_dir: str | Path | None = None,
    verify_fn: Callable | None = None,
) -> dict:
    """Train `config` (YAML path or dict, plus `key=value` overrides) and return a flat metrics dict:
    the final evaluation (built-in held-out synthetic verification `val_accuracy` in percent, and for
    ARFace the Attention-Net's drop rates; or whatever `verify_fn(trainer)` returns), plus
    `final_loss`, `final_train_acc`, `steps`, `out_dir` and `checkpoint`.
    """
    ov = list(overrides)
    if out_dir is not None:
        ov.append(f"out_dir={Path(out_dir)}")
    res = train(config, ov, verify_fn=verify_fn)
    last = res.history[-1] if res.history else {}
    return {
        **res.metrics,
        "final_loss": last.get("loss"),
        "final_train_acc": last.get("acc"),
        "steps": last.get("step"),
        "out_dir": str(res.out_dir),
        "checkpoint": str(res.checkpoint) if res.checkpoint else None,
    }
