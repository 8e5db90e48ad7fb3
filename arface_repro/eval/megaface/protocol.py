"""MegaFace Challenge 1 with FaceScrub probes (`arface_repro.eval.megaface.metric`).

Features from one of:
* `--model SPEC` with `--data-root` holding the FaceScrub and MegaFace images (layout in
  protocols/megaface.yaml): one store with paths `FaceScrub/<list path>` and `MegaFace/<list path>`;
* `--features FACESCRUB.npz` (paths as in the FaceScrub list, or `FaceScrub/...`) with
  `--distractor-features` (a store, or a Trillion-format `.bin` matrix in list order);
* the devkit's per-image feature files: `--facescrub-dir`, `--megaface-dir`, `--algo`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from arface_repro.errors import ConfigError, MissingDataError
from arface_repro.eval.megaface import devkit as dk
from arface_repro.eval.megaface import metric as mf
from arface_repro.eval.protocols import register_kind
from arface_repro.eval.protocols.base import ImageRequest, Protocol, need, parse_sizes
from arface_repro.eval.trillion import reader as tpio  # a one-file distractor matrix: Trillion-Pairs' format
from arface_repro.io.feature_store import load_feature_store
from arface_repro.utils.argtypes import int_range


@register_kind("megaface")
class MegaFace(Protocol):
    name = "megaface"
    summary = "MegaFace Challenge 1, FaceScrub probes: rank-1 identification per distractor-set size, Ver@FAR=1e-6"
    shards = True
    features_help = "feature store .npz of the FaceScrub probes (or of FaceScrub + MegaFace images)"

    @classmethod
    def add_arguments(cls, p) -> None:
        g = p.add_argument_group("megaface options")
        g.add_argument("--facescrub-list", metavar="FILE", help="facescrub_features_list.json (default from the layout)")
        g.add_argument("--megaface-list", metavar="FILE",
                       help="megaface_features_list.json_1000000_1: the distractor order (default from the layout)")
        g.add_argument("--set-lists", metavar="DIR", help="folder with megaface_features_list.json_<size>_1 per size "
                                                          "(default: nested prefixes of the 1M list)")
        g.add_argument("--sizes", default="10,100,1000,10000,100000,1000000", help="distractor set sizes")
        g.add_argument("--distractor-features", metavar="FILE",
                       help="distractor features: a store .npz or a Trillion-format .bin in list order")
        g.add_argument("--facescrub-dir", metavar="DIR", help="devkit feature files of FaceScrub (<path>_<algo>.bin)")
        g.add_argument("--megaface-dir", metavar="DIR", help="devkit feature files of the MegaFace distractors")
        g.add_argument("--algo", help="devkit algorithm name (files end in _<algo>.bin)")
        g.add_argument("--noise-rule", choices=("insightface", "exclude", "none"), default="insightface",
                       help="noise lists: insightface (default), exclude, none")
        g.add_argument("--facescrub-noises", metavar="FILE", help="facescrub_noises.txt (default from the layout)")
        g.add_argument("--megaface-noises", metavar="FILE", help="megaface_noises.txt (default from the layout)")
        cls.add_rule_argument(g, "rank rule: facex-zoo (mated >= N-th distractor; default) or ties-against")
        g.add_argument("--max-rank", type=int_range(1, 1000), default=10, help="CMC up to this rank (default 10)")
        cls.add_flip_argument(g)
        cls.add_scale_arguments(p)

    def check_options(self) -> None:
        parse_sizes(self.opts.sizes)

    # ------------------------------------------------------------------ lists

    def lists(self):
        fs_ids, fs_paths = dk.read_facescrub_list(self.path("facescrub_list", self.opts.facescrub_list,
                                                            option="facescrub-list"))
        mf_paths = dk.read_megaface_list(self.path("megaface_list", self.opts.megaface_list, option="megaface-list"))
        return fs_ids, fs_paths, mf_paths

    def images(self) -> ImageRequest:
        if self.data_root is None:
            raise ConfigError("--model needs --data-root (holding the FaceScrub and MegaFace images)")
        _, fs_paths, mf_paths = self.lists()
        fs, md = self.spec.file("facescrub_images"), self.spec.file("megaface_images")
        return ImageRequest(self.data_root, [f"{fs}/{p}" for p in fs_paths] + [f"{md}/{p}" for p in mf_paths],
                            what="FaceScrub probes and MegaFace distractors")

    def read_features(self, path):
        if path is None and self.opts.facescrub_dir:
            return None  # devkit feature files
        return super().read_features(path)

    # ------------------------------------------------------------------ evaluation

    def _rows(self, store, paths, prefix: str, what: str) -> np.ndarray:
        idx = store.index
        pre = prefix + "/" if f"{prefix}/{paths[0]}" in idx else ""
        return store.indices([pre + p for p in paths], what=what)

    def _features(self, store, fs_paths, mf_paths):
        o = self.opts
        flip = "none"
        if o.facescrub_dir:
            need(o, "algo", protocol=self.name)
            probes = dk.read_feature_files(o.facescrub_dir, fs_paths, o.algo)
        else:
            flip = self.flip_mode(store)
            feats = store.combined(flip)
            probes = feats[self._rows(store, fs_paths, self.spec.file("facescrub_images"), "FaceScrub list")]
        if o.megaface_dir:
            need(o, "algo", protocol=self.name)
            return probes, dk.read_feature_files(o.megaface_dir, mf_paths, o.algo), flip
        if o.distractor_features:

            if str(o.distractor_features).endswith(".npz"):
                ds = load_feature_store(o.distractor_features)
                self.files["distractor_features"] = str(o.distractor_features)
                return probes, ds.combined(flip if ds.flip_features is not None else "none")[
                    self._rows(ds, mf_paths, self.spec.file("megaface_images"), "MegaFace list")], flip
            dis = tpio.read_features(o.distractor_features)
            if dis.shape[0] != len(mf_paths):
                raise ConfigError(f"{o.distractor_features}: {dis.shape[0]} rows for {len(mf_paths)} list entries")
            self.files["distractor_features"] = str(o.distractor_features)
            return probes, dis, flip
        if store is not None:
            return probes, store.combined(flip)[self._rows(store, mf_paths, self.spec.file("megaface_images"),
                                                          "MegaFace list")], flip
        raise ConfigError("--protocol megaface needs distractor features: --distractor-features, --megaface-dir, "
                          "or a store holding MegaFace/ paths")

    def _sets(self, mf_paths) -> dict[int, np.ndarray]:
        sizes = parse_sizes(self.opts.sizes)
        if not self.opts.set_lists:
            return mf.default_sets(len(mf_paths), sizes)
        pos = {p: i for i, p in enumerate(mf_paths)}
        sets = {}
        for s in sizes:
            f = Path(self.opts.set_lists) / f"megaface_features_list.json_{s}_1"
            lst = dk.read_megaface_list(f)
            self.files[f"set_list_{s}"] = str(f)
            try:
                sets[s] = np.sort(np.array([pos[p] for p in lst], np.int64))
            except KeyError as exc:
                raise MissingDataError(f"{f}: image {exc.args[0]} is not in the MegaFace list") from None
        return sets

    def evaluate(self, store) -> dict:
        fs_ids, fs_paths, mf_paths = self.lists()
        probes, dis, flip = self._features(store, fs_paths, mf_paths)
        sets = self._sets(mf_paths)
        noise = self.opts.noise_rule
        fs_noise = md_noise = None
        extra = {}
        if noise != "none":
            fsn = self.path("facescrub_noises", self.opts.facescrub_noises, option="facescrub-noises")
            mdn = self.path("megaface_noises", self.opts.megaface_noises, option="megaface-noises")
            fs_noise = dk.noise_mask(fs_paths, dk.read_noise_list(fsn), by_basename=True)
            md_noise = dk.noise_mask(mf_paths, dk.read_noise_list(mdn), by_basename=False)
            extra["noise_counts"] = {"facescrub": int(fs_noise.sum()), "megaface": int(md_noise.sum())}
        rule = self.rule()
        res = mf.evaluate(probes, fs_ids, dis, sets=sets, probe_noise=fs_noise, distractor_noise=md_noise,
                          noise_rule=noise, rule=rule, max_rank=self.opts.max_rank, backend=self.backend, ctx=self.ctx,
                          max_memory_gb=self.max_memory_gb, progress=not self.opts.quiet)
        extra.update(cmc={mf.size_key(s): [100.0 * v for v in c] for s, c in res["cmc"].items()},
                     counts={k: v for k, v in res.items() if k.startswith("n_")},
                     set_sizes={mf.size_key(s): v for s, v in res["set_sizes"].items()}, noise=noise, flip=flip,
                     verification_rule="strict: threshold = (floor(FAR*N_imp)+1)-th largest impostor, accept if >")
        return self.record(mf.metrics_from(res), rule=rule, extra=extra)
