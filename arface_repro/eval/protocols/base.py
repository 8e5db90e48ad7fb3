"""The one protocol interface: a class per protocol, declaring its options, files, images and evaluation.

A protocol class
* declares its command-line options (`add_arguments`); `arface evaluate --protocol P --help` shows them;
* finds its input files under a dataset root from `protocols/<name>.yaml` (`path(role)`; an explicit
  option overrides the layout);
* says which images a `--model` extraction needs (`images()` -> `ImageRequest`);
* reads precomputed features (`read_features`, default a feature store `.npz`);
* turns features into one result record (`evaluate(store) -> record`).

`from_options(**kw)` builds an instance from keyword arguments with the same defaults as the CLI, which
is how scripts and tests call protocols without a command line.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from arface_repro.errors import ConfigError, MissingDataError
from arface_repro.eval.chunked import DistContext, make_backend
from arface_repro.eval.protocols.options import build_parser
from arface_repro.eval.protocols.spec import ProtocolSpec, load_spec
from arface_repro.eval.store_provenance import image_list_identity, store_model_info
from arface_repro.io.feature_store import load_feature_store
from arface_repro.io.records import build_record
from arface_repro.utils.argtypes import float_range

FLIP_MODES = ("add", "concat", "none")


@dataclass
class ImageRequest:
    """Images a protocol needs from a model. `paths` are relative to `root` and become the store's paths.

    `align`: per-image 5-point landmarks in the source image (N×5×2): each image is warped to the
    112×112 ArcFace template first (IJB loose crops). `arrays`: in-memory uint8 RGB images instead of
    files (an insightface `.bin`), with `paths` as their names.
    """

    root: Path | None
    paths: list[str]
    align: np.ndarray | None = None
    arrays: Any = None
    what: str = "images"


@dataclass
class Provenance:
    """Where the features came from, for the record: a model (spec + identity) or a feature file."""

    model: str | None = None
    model_info: dict | None = None
    features: str | None = None
    label: str | None = None
    landmarks: dict | None = None
    extraction: dict = field(default_factory=dict)
    reported: list = field(default_factory=list)   # a model preset's published figures (protocols/models/*.yaml)
    images: dict | None = None    # the image list's identity (eval.store_provenance.image_list_identity)


class Protocol:
    """Base class; subclasses set `name`, `summary` and implement the hooks below."""

    name: ClassVar[str] = "?"
    kind: ClassVar[str] = "?"                  # the definition family (`kind:`), set by `register_kind`
    summary: ClassVar[str] = ""
    shards: ClassVar[bool] = False           # scores in chunks that torchrun processes share
    features_help: ClassVar[str] = "feature store .npz (features, paths[, flip_features]) relative to --data-root"
    sidecar_arrays: dict | None = None         # set by evaluate(): arrays written beside the record (write_record)

    def __init__(self, opts: argparse.Namespace):
        self.opts = opts
        self.spec: ProtocolSpec = load_spec(self.name)
        root = getattr(opts, "data_root", None)
        self.data_root = Path(root) if root else None
        self.provenance = Provenance(features=getattr(opts, "features", None), label=getattr(opts, "label", None))
        self.files: dict[str, str] = {}      # role -> protocol file used (hashed into the record)
        self._ctx = self._backend = None

    # ------------------------------------------------------------------ options

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this protocol's own options (common options are added by the command)."""

    @classmethod
    def add_scale_arguments(cls, parser) -> None:
        g = parser.add_argument_group("scale")
        g.add_argument("--max-memory-gb", type=float_range(0.0, 1e6, lo_open=True), default=2.0,
                       help="working memory for score blocks beyond the inputs (default 2)")

    @classmethod
    def layout_default(cls, role: str) -> str:
        """' (default <data-root>/PATH)' for an option whose default is the definition's `layout[role]`."""
        rel = load_spec(cls.name).layout.get(role)
        return f" (default <data-root>/{rel})" if rel else ""

    @classmethod
    def add_rule_argument(cls, parser, help: str) -> None:
        """`--rule`, its choices the definition's rules (`rule.default` and `rule.alternatives`)."""
        parser.add_argument("--rule", choices=load_spec(cls.name).rules, default=None, help=help)

    @classmethod
    def add_flip_argument(cls, parser, default_help: str = "add when the store has flip features, else none") -> None:
        parser.add_argument("--flip", choices=FLIP_MODES, default=None,
                            help=f"combine f(x) and f(flip x): add (insightface), concat or none (default: {default_help}); "
                                 "with --model, none skips the flipped pass")
        parser.add_argument("--no-flip", dest="flip", action="store_const", const="none", help="same as --flip none")

    @classmethod
    def parser(cls, prog: str | None = None) -> argparse.ArgumentParser:
        """The full option parser of this protocol: common options plus its own."""

        return build_parser(cls, prog)

    @classmethod
    def from_options(cls, **kw) -> Protocol:
        """An instance with the CLI's defaults, overridden by keyword arguments (option names with '_')."""
        p = cls.parser()
        opts = p.parse_args(["--protocol", cls.name])
        unknown = sorted(set(kw) - set(vars(opts)))
        if unknown:
            raise ConfigError(f"{cls.name}: unknown option(s) {unknown}")
        for k, v in kw.items():
            setattr(opts, k, None if v is None else (str(v) if isinstance(v, os.PathLike) else v))
        return cls(opts)

    def check_options(self) -> None:
        """Checks of options against the protocol's files, made before any feature is read or extracted
        (e.g. BLUFR's --trials against its config). Default: none."""

    # ------------------------------------------------------------------ files

    def path(self, role: str, explicit: str | os.PathLike | None = None, *, required: bool = True,
             option: str | None = None) -> Path | None:
        """The file of `role`: the explicit option value, else `<data-root>/<layout[role]>`."""
        if explicit:
            p = Path(explicit)
        elif self.data_root is not None and role in self.spec.layout:
            p = self.data_root / self.spec.layout[role]
        else:
            if not required:
                return None
            hint = f"--{option}" if option else f"the {role} file"
            where = f" (or --data-root holding {self.spec.layout[role]})" if role in self.spec.layout else ""
            raise ConfigError(f"--protocol {self.name} needs {hint}{where}")
        if required and not p.exists():
            raise MissingDataError(f"{p}: {self.name} {role} not found")
        if not p.exists():
            return None
        self.files[role] = str(p)
        return p

    # ------------------------------------------------------------------ features

    def images(self) -> ImageRequest:
        """Images to embed for `--model` (default: none; protocols with images override)."""
        raise ConfigError(f"--protocol {self.name} has no images to embed; give precomputed features with --features")

    def read_features(self, path: str | None):
        """Precomputed features from `--features` (default: a feature store)."""
        if not path:
            raise ConfigError(f"--protocol {self.name} needs --features STORE or --model SPEC")

        return load_feature_store(path)

    def note_features(self, store) -> None:
        """Note what the features are, for the record: the identity of the store's image list (with the
        images' sizes when a --model run read them from files) and, for features given with --features, the
        model the store names. Stores that are not feature stores (feature matrices) are left as they are."""

        paths = getattr(store, "paths", None)
        if paths is None:
            return
        pv = self.provenance
        root = (getattr(store, "meta", None) or {}).get("data_root") if pv.model is not None else None
        pv.images = image_list_identity([str(p) for p in paths], root if root and os.path.isdir(root) else None)
        if pv.model is None:
            pv.model_info = store_model_info(store)

    def flip_mode(self, store) -> str:
        """The flip combination: the --flip option, or add when the store has flip features, else none."""
        asked = getattr(self.opts, "flip", None)
        has = getattr(store, "flip_features", None) is not None
        if asked is None:
            return "add" if has else "none"
        if asked != "none" and not has:
            raise MissingDataError(f"--flip {asked}: {getattr(store, 'source', 'the feature store')} has no flip_features "
                                   "(use --flip none, or extract with flips)")
        return asked

    def wants_flip(self) -> bool:
        """Whether a --model extraction computes the flipped pass."""
        return getattr(self.opts, "flip", None) != "none"

    # ------------------------------------------------------------------ compute

    @property
    def ctx(self):
        if self._ctx is None:

            self._ctx = DistContext()
        return self._ctx

    @property
    def backend(self):
        if self._backend is None:

            self._backend = make_backend(getattr(self.opts, "device", None) or "auto")
        return self._backend

    @property
    def max_memory_gb(self) -> float | None:
        return getattr(self.opts, "max_memory_gb", None)

    def evaluate(self, store) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ records

    def rule(self) -> str:
        """The reporting rule chosen (--rule, default the spec's)."""
        r = getattr(self.opts, "rule", None) or self.spec.default_rule
        if r not in self.spec.rules:
            raise ConfigError(f"--protocol {self.name}: unknown rule {r!r} (expected {', '.join(self.spec.rules)})")
        return r

    def record(self, metrics: dict, *, rule: str | None = None, per_fold=None, per_trial=None, curves=None,
               extra: dict | None = None) -> dict:
        """A complete result record (not yet written) with the model/feature provenance and protocol files."""

        pv = self.provenance
        inputs: dict[str, Any] = {}
        if pv.features:
            inputs["features"] = pv.features
        inputs.update(self.files)
        ext: dict[str, Any] = {"reference": dict(self.spec.reference)}
        ext["model_info"] = pv.model_info   # a --features run: the model the store names (None: it names none)
        if pv.images is not None:
            ext["images"] = pv.images
        if pv.landmarks is not None:
            ext["landmarks"] = pv.landmarks
        if pv.extraction:
            ext["extraction"] = pv.extraction
        if pv.reported:  # what the checkpoint's authors report, beside what was measured here
            ext["reported_by_authors"] = [r for r in pv.reported if _same_benchmark(r.get("benchmark"), self.name)]
        if self.shards:
            ext["world_size"] = self.ctx.world
        ext.update(extra or {})
        model = pv.model if pv.model is not None else pv.label
        return build_record(self.name, rule or self.rule(), metrics, per_fold=per_fold, per_trial=per_trial,
                            curves=curves, model=model, inputs=inputs, extra=ext)


def _same_benchmark(benchmark, protocol: str) -> bool:
    """'LFW' ~ lfw, 'IJB-C' ~ ijbc, 'CFP-FP' ~ cfp-fp: letters and digits compared case-insensitively."""
    norm = lambda t: "".join(ch for ch in str(t).lower() if ch.isalnum())  # noqa: E731
    return norm(benchmark) == norm(protocol)


def parse_sizes(text: str, what: str = "--sizes") -> list[int]:
    out = []
    for s in str(text).split(","):
        if not s.strip():
            continue
        try:
            v = float(s)
            if v != int(v):
                raise ValueError
        except (ValueError, OverflowError):
            raise ConfigError(f"{what} must be comma-separated integers, got {text!r}") from None
        out.append(int(v))
    if not out or min(out) <= 0:
        raise ConfigError(f"{what} must list positive sizes, got {text!r}")
    return out


def need(opts, *names: str, protocol: str) -> None:
    """ConfigError naming the first missing option."""
    for n in names:
        if getattr(opts, n.replace("-", "_"), None) in (None, ""):
            raise ConfigError(f"--protocol {protocol} needs --{n}")


def first_existing(paths: Sequence[Path]) -> Path | None:
    for p in paths:
        if p.exists():
            return p
    return None
