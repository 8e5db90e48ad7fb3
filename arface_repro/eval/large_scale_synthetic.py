"""Synthetic inputs shaped like the real large-scale sets, for CLI runs, tests and benchmarks.

Features are class centres plus Gaussian noise (so the metrics are non-trivial); everything is seeded.
Full IJB-C shape: 469,375 images, 23,124 templates (3,531 subjects; gallery templates first), 15,658,489
pairs; MegaFace: 3,530 FaceScrub probes of 80 identities and up to 1,000,000 distractors; Trillion-Pairs:
a probe matrix with identities plus a distractor matrix. `--scale` shrinks every count.

  python scripts/make_synthetic_large.py ijbc OUT_DIR [--scale 0.01]
  python scripts/make_synthetic_large.py megaface OUT_DIR [--distractors 1000000]
  python scripts/make_synthetic_large.py trillion OUT_DIR [--probes 20000 --distractors 200000]
  python scripts/make_synthetic_large.py ytf OUT_DIR          (frames for the real splits.txt videos)
  python scripts/make_synthetic_large.py rmfrd OUT_DIR

(`scripts/make_synthetic_large.py` runs `main`; tests and benchmarks import the generators.) It sits in the
evaluation layer because the YTF inputs follow the real splits through `eval.ytf.splits.read_splits`.

Files are laid out as protocols/<name>.yaml expects them under a data root, so for example
  arface evaluate --protocol ijbc --data-root OUT_DIR --features OUT_DIR/ijbc_features.npz
  arface evaluate --protocol megaface --data-root OUT_DIR --features OUT_DIR/facescrub.npz \
      --distractor-features OUT_DIR/megaface_distractors.bin --noise-rule none
  arface evaluate --protocol trillion --data-root OUT_DIR
  arface evaluate --protocol ytf --data-root OUT_DIR --features OUT_DIR/ytf_frames.npz
  arface evaluate --protocol rmfrd --features OUT_DIR/rmfrd.npz
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arface_repro.eval.megaface import devkit as dk
from arface_repro.eval.trillion import reader as tpio
from arface_repro.eval.ytf.splits import read_splits
from arface_repro.io.feature_store import save_feature_store
from arface_repro.shared_data import shared_path
from arface_repro.utils.atomic import atomic_open

IJBC = dict(n_images=469_375, n_templates=23_124, n_pairs=15_658_489, n_subjects=3_531)
IJBB = dict(n_images=227_630, n_templates=12_115, n_pairs=8_010_270, n_subjects=1_845)


class LazyGaussianRows:
    """An N×D array-like whose rows are `centres[label] + sigma·noise`, generated on demand per fixed block
    (so 1M × 512 distractors cost no resident memory); supports `shape`, `len`, row slices and index arrays."""

    block = 65536

    def __init__(self, n: int, dim: int, seed: int, centres: np.ndarray | None = None,
                 labels: np.ndarray | None = None, sigma: float = 1.0):
        self.shape = (int(n), int(dim))
        self.seed, self.centres, self.labels, self.sigma = seed, centres, labels, sigma

    def __len__(self):
        return self.shape[0]

    def _block(self, b: int) -> np.ndarray:
        s, e = b * self.block, min(self.shape[0], (b + 1) * self.block)
        rng = np.random.default_rng([self.seed, b])
        x = self.sigma * rng.standard_normal((e - s, self.shape[1]), dtype=np.float32)
        if self.centres is not None:
            x += self.centres[self.labels[s:e]]
        return x

    def __getitem__(self, key):
        if isinstance(key, slice):
            s, e, st = key.indices(self.shape[0])
            if st != 1:
                raise IndexError("step slices are not supported")
            parts = [self._block(b)[max(s, b * self.block) - b * self.block: min(e, (b + 1) * self.block) - b * self.block]
                     for b in range(s // self.block, (max(e, s + 1) - 1) // self.block + 1)] if e > s else []
            return np.concatenate(parts) if parts else np.empty((0, self.shape[1]), np.float32)
        idx = np.asarray(key)
        out = np.empty((idx.size, self.shape[1]), np.float32)
        blocks = idx // self.block
        for b in np.unique(blocks):
            m = blocks == b
            out[m] = self._block(int(b))[idx[m] - b * self.block]
        return out

    def materialize(self) -> np.ndarray:
        return self[0:self.shape[0]]


# ------------------------------------------------------------------------------------------------ IJB


@dataclass
class SynthIJB:
    images: np.ndarray
    templates: np.ndarray
    medias: np.ndarray
    faceness: np.ndarray
    landmarks: np.ndarray
    subjects_of_template: np.ndarray   # indexed by template id - 1
    t1: np.ndarray
    t2: np.ndarray
    labels: np.ndarray
    image_subject: np.ndarray
    n_gallery: int


def _impostor_keys(rng: np.random.Generator, n_imp: int, n_subjects: int, n_templates: int,
                   gen_t1: np.ndarray, gen_t2: np.ndarray) -> np.ndarray:
    """`n_imp` distinct impostor pairs (gallery t1 < n_subjects, probe t2 ≥ n_subjects) as keys
    t1·n_templates + t2, in the order they are first drawn: each template pair once, as in the real protocol
    (the reader refuses repeats). Rounds of random draws, each of as many pairs as are still missing; a
    repeat (of an earlier round or earlier in its round) and a genuine pair are dropped, until there are
    `n_imp` or the grid is used up.

    The pairs kept are tracked in a boolean table over the grid, so a round costs its own draw only. (A
    round used to deduplicate everything kept so far again: when `n_imp` is the whole grid — small scales,
    e.g. `--scale 0.05` — the last pairs take ~1.6·grid rounds of one or two draws, each re-sorting the whole
    set; minutes to hours.) Same draws, same order, same result for a seed as that loop
    (tests/test_large_scale_synthetic.py keeps it as the reference)."""
    n_probe = n_templates - n_subjects
    taken = np.zeros(n_subjects * n_probe, bool)   # grid cell t1 * n_probe + (t2 - n_subjects): kept or genuine
    taken[gen_t1.astype(np.int64) * n_probe + (gen_t2 - n_subjects)] = True
    parts, have = [], 0
    while have < n_imp:
        k = n_imp - have
        t1 = rng.integers(0, n_subjects, k).astype(np.int64)
        t2 = rng.integers(n_subjects, n_templates, k)
        cell = t1 * n_probe + (t2 - n_subjects)
        _, first = np.unique(cell, return_index=True)   # first occurrence within the round
        first.sort()
        first = first[~taken[cell[first]]]
        taken[cell[first]] = True
        parts.append(t1[first] * n_templates + t2[first])
        have += first.size
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def synth_ijb(n_images: int, n_templates: int, n_pairs: int, n_subjects: int, seed: int = 0) -> SynthIJB:
    """Template/media/pair structure like IJB-C: templates 1..n_subjects are gallery templates (one per
    subject), the rest probe templates of random subjects; pairs = gallery × probe templates (each once), with every
    probe template meeting its own subject's gallery template once (genuine) and random others."""
    rng = np.random.default_rng(seed)
    if n_templates < 2 * n_subjects:
        n_subjects = max(2, n_templates // 2)
    subj = np.concatenate([np.arange(n_subjects), rng.integers(0, n_subjects, n_templates - n_subjects)])
    # every template gets >= 1 image; the rest are spread at random
    tmpl_of_img = np.concatenate([np.arange(n_templates), rng.integers(0, n_templates, n_images - n_templates)])
    tmpl_of_img.sort()
    medias = tmpl_of_img * 8 + rng.integers(0, 3, n_images)  # ~1-3 media per template
    templates = tmpl_of_img + 1
    images = np.array([f"{i + 1}.jpg" for i in range(n_images)])
    faceness = rng.uniform(0.3, 1.0, n_images).astype(np.float32)
    lm = np.tile(np.array([[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]], np.float32), (n_images, 1, 1))
    n_probe = n_templates - n_subjects
    gen_t2 = np.arange(n_subjects, n_templates)
    gen_t1 = subj[gen_t2]
    n_imp = min(max(0, n_pairs - n_probe), n_subjects * n_probe - n_probe)
    imp = _impostor_keys(rng, n_imp, n_subjects, n_templates, gen_t1, gen_t2)
    imp_t1, imp_t2 = np.divmod(imp, n_templates)
    t1 = np.concatenate([gen_t1, imp_t1])
    t2 = np.concatenate([gen_t2, imp_t2])
    order = np.argsort(t1, kind="stable")
    t1, t2 = t1[order][:n_pairs], t2[order][:n_pairs]
    labels = (subj[t1] == subj[t2]).astype(np.int8)  # dtypes as arface_repro.eval.ijb.meta reads them
    return SynthIJB(images, templates, medias, faceness, lm, subj, (t1 + 1).astype(np.int32), (t2 + 1).astype(np.int32), labels,
                    subj[tmpl_of_img], n_subjects)


def ijb_features(data: SynthIJB, dim: int = 512, seed: int = 1, sigma: float = 8.0, flip_sigma: float = 0.3):
    """(features, flip_features) float32, raw (unnormalised): subject centre + noise, scaled per image."""
    rng = np.random.default_rng(seed)
    n_sub = int(data.subjects_of_template.max()) + 1
    centres = rng.standard_normal((n_sub, dim), dtype=np.float32)
    n = data.images.size
    f = np.empty((n, dim), np.float32)
    g = np.empty((n, dim), np.float32)
    for s in range(0, n, 65536):
        e = min(n, s + 65536)
        base = centres[data.image_subject[s:e]] + sigma * rng.standard_normal((e - s, dim), dtype=np.float32)
        scale = rng.uniform(5, 30, (e - s, 1)).astype(np.float32)
        f[s:e] = base * scale
        g[s:e] = (base + flip_sigma * rng.standard_normal((e - s, dim), dtype=np.float32)) * scale
    return f, g


def write_ijb(out: Path, data: SynthIJB, features, flip, dataset: str = "ijbc") -> None:
    meta = out / "meta"
    meta.mkdir(parents=True, exist_ok=True)
    with atomic_open(meta / f"{dataset}_face_tid_mid.txt", "w") as fh:
        for a, b, c in zip(data.images.tolist(), data.templates.tolist(), data.medias.tolist()):
            fh.write(f"{a} {b} {c}\n")
    with atomic_open(meta / f"{dataset}_name_5pts_score.txt", "w") as fh:
        for name, lm, s in zip(data.images.tolist(), data.landmarks.reshape(-1, 10), data.faceness):
            fh.write(name + " " + " ".join(f"{v:.2f}" for v in lm) + f" {s:.6f}\n")
    with atomic_open(meta / f"{dataset}_template_pair_label.txt", "w") as fh:
        np.savetxt(fh, np.stack([data.t1, data.t2, data.labels], axis=1), fmt="%d")
    # 1:N lists: gallery templates split into G1 (even subjects) / G2 (odd); probes = the rest
    subj = data.subjects_of_template
    tmpl_ids = np.arange(subj.size) + 1
    g = tmpl_ids[: data.n_gallery]
    for name, sel in (("G1", subj[: data.n_gallery] % 2 == 0), ("G2", subj[: data.n_gallery] % 2 == 1)):
        with atomic_open(meta / f"{dataset}_1N_gallery_{name}.csv", "w") as fh:
            fh.write("TEMPLATE_ID,SUBJECT_ID,FILENAME\n")
            for t in g[sel]:
                fh.write(f"{t},{subj[t - 1]},img/{t}.jpg\n")
    with atomic_open(meta / f"{dataset}_1N_probe_mixed.csv", "w") as fh:
        fh.write("TEMPLATE_ID,SUBJECT_ID,FILENAME\n")
        for t in tmpl_ids[data.n_gallery:]:
            fh.write(f"{t},{subj[t - 1]},frames/{t}.jpg\n")
    save_feature_store(out / f"{dataset}_features.npz", features, [f"loose_crop/{n}" for n in data.images.tolist()], flip)


# ------------------------------------------------------------------------------------------------ MegaFace / Trillion


def identity_probes(n_ids: int, n_images: int, dim: int, seed: int, sigma: float = 1.0):
    """(features, identity labels) with every identity holding ≥ 2 images."""
    rng = np.random.default_rng(seed)
    ids = np.concatenate([np.repeat(np.arange(n_ids), 2), rng.integers(0, n_ids, n_images - 2 * n_ids)])
    ids.sort()
    centres = rng.standard_normal((n_ids, dim), dtype=np.float32)
    x = centres[ids] + sigma * rng.standard_normal((n_images, dim), dtype=np.float32)
    return x, ids


def write_megaface(out: Path, n_dis: int, dim: int = 128, seed: int = 0) -> None:
    out.mkdir(parents=True, exist_ok=True)
    x, ids = identity_probes(80, 3530, dim, seed, sigma=1.2)
    names = [f"Person_{i:02d}" for i in range(80)]
    paths = []
    count = {}
    for i in ids:
        count[i] = count.get(i, 0) + 1
        paths.append(f"{names[i]}/{names[i]}_{count[i]}.png")
    lists = out / "devkit" / "templatelists"
    lists.mkdir(parents=True, exist_ok=True)
    dk.write_facescrub_list(lists / "facescrub_features_list.json", [names[i] for i in ids], paths)
    save_feature_store(out / "facescrub.npz", x, paths)
    mpaths = [f"{i // 1000:03d}/{i}@N00/{i}_0.jpg" for i in range(n_dis)]
    dk.write_megaface_list(lists / "megaface_features_list.json_1000000_1", mpaths)
    tpio.write_features(out / "megaface_distractors.bin", LazyGaussianRows(n_dis, dim, seed + 7).materialize())


def write_trillion(out: Path, n_probe: int, n_dis: int, dim: int = 128, seed: int = 0) -> None:
    out.mkdir(parents=True, exist_ok=True)
    x, ids = identity_probes(max(2, n_probe // 48), n_probe, dim, seed, sigma=0.9)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    tpio.write_features(out / "testdata_features.bin", x)
    (out / "testdata_labels.txt").write_text("".join(f"img{i}.jpg id{k}\n" for i, k in enumerate(ids)))
    d = LazyGaussianRows(n_dis, dim, seed + 5).materialize()
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    tpio.write_features(out / "distractor_features.bin", d)


def write_ytf(out: Path, splits: Path, dim: int = 128, seed: int = 0) -> None:
    pairs = read_splits(splits)
    vids = sorted(set(pairs.video1) | set(pairs.video2))
    rng = np.random.default_rng(seed)
    people = sorted({v.split("/")[0] for v in vids})
    centre = {p: rng.standard_normal(dim) for p in people}
    paths, feats = [], []
    for v in vids:
        for k in range(int(rng.integers(20, 60))):
            paths.append(f"{v}/aligned_detect_{k}.jpg")
            feats.append(centre[v.split("/")[0]] + 6.0 * rng.standard_normal(dim))
    save_feature_store(out / "ytf_frames.npz", np.asarray(feats, np.float32), paths)
    (out / "splits.txt").write_text(Path(splits).read_text())


def write_rmfrd(out: Path, n_people: int = 525, dim: int = 128, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((n_people, dim))
    paths, feats = [], []
    for i in range(n_people):
        for k in range(int(rng.integers(1, 9))):
            paths.append(f"AFDB_masked_face_dataset/p{i:04d}/{k}.jpg")
            feats.append(c[i] + 1.3 * rng.standard_normal(dim))
        for k in range(int(rng.integers(20, 300))):
            paths.append(f"AFDB_face_dataset/p{i:04d}/{k}.jpg")
            feats.append(c[i] + 0.8 * rng.standard_normal(dim))
    save_feature_store(out / "rmfrd.npz", np.asarray(feats, np.float32), paths)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("ijbb", "ijbc", "megaface", "trillion", "ytf", "rmfrd"))
    ap.add_argument("out", type=Path)
    ap.add_argument("--scale", type=float, default=1.0, help="IJB: multiply image/template/pair counts")
    ap.add_argument("--dim", type=int, default=None, help="feature dimension (IJB default 512, others 128)")
    ap.add_argument("--distractors", type=int, default=1_000_000)
    ap.add_argument("--probes", type=int, default=20_000, help="Trillion: probe rows")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.what in ("ijbb", "ijbc"):
        shape = IJBC if a.what == "ijbc" else IJBB
        sz = {k: max(4, int(v * a.scale)) for k, v in shape.items()}
        data = synth_ijb(**sz, seed=a.seed)
        f, g = ijb_features(data, a.dim or 512, seed=a.seed + 1)
        write_ijb(a.out, data, f, g, a.what)
    elif a.what == "megaface":
        write_megaface(a.out, a.distractors, a.dim or 128, a.seed)
    elif a.what == "trillion":
        write_trillion(a.out, a.probes, a.distractors, a.dim or 128, a.seed)
    elif a.what == "ytf":
        splits = shared_path("data", "ytf", "splits.txt")
        if splits is None:
            print("../shared/data/ytf/splits.txt is absent", file=sys.stderr)
            return 2
        write_ytf(a.out, splits, a.dim or 128, a.seed)
    else:
        write_rmfrd(a.out, dim=a.dim or 128, seed=a.seed)
    print(f"wrote synthetic {a.what} inputs under {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
