"""The LFW-scale reproduction: the ablation rows trained on real faces at CPU scale.

A tiny backbone is trained from scratch on the training identities of BLUFR trial 1 (LFW: 2,952 images of
1,500 people, 112x96 SphereFace crops padded to 112x112, the paper's patch radius 30 on the ArcFace
template landmarks), with each row's method (plain, Random, Attention-Net, feature-map masking, Cutout,
DropBlock, PickPatch) and the synthetic rows' settings otherwise. It is evaluated on what that training
leaves unseen (this package's definition, labelled as such in every record):

- ``Acc``: LFW View 2's 10-fold accuracy (insightface rule) on the pairs whose two people are not among
  trial 1's training identities (3,918 of the 6,000 pairs, folds kept);
- ``VR@FAR=0.1%`` and ``DIR@FAR=1%``: BLUFR trial 1 exactly (its test and gallery/probe split are
  identity-disjoint from its training split); one trial, so no (mean - std) aggregate.

Records: `<runs>/lfw_scale/<config>-s<seed>-<key>.json`, protocol `lfw-scale`. What
`scripts/mini_ablation.py` computed before, now in the tables' structure.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from arface_repro.data.alignment import ARCFACE_112
from arface_repro.data.image_decoding import decode_bgr
from arface_repro.errors import ArfaceError, ConfigError, FormatError, MissingDataError
from arface_repro.eval.blufr.config import load_blufr_config
from arface_repro.eval.blufr.metric import (
    OSI_FARS,
    RANKS,
    REPORT_OSI_FAR,
    REPORT_RANK,
    REPORT_VERIFY_FAR,
    VERIFY_FARS,
    eval_roc,
    open_set_roc,
)
from arface_repro.eval.kfold import kfold_accuracy, l2_normalize, squared_l2
from arface_repro.eval.store_provenance import image_list_identity
from arface_repro.io.image_header import MAX_IMAGE_FILE_BYTES
from arface_repro.io.pairs import parse_lfw_pairs
from arface_repro.io.records import build_record, load_record, write_record
from arface_repro.paper.synthetic_runs import Job
from arface_repro.utils.hashing import sha256_file
from arface_repro.utils.input_files import read_capped
from arface_repro.utils.process_pool import run_unordered
from arface_repro.utils.provenance import code_key, environment_key

PROTOCOL = "lfw-scale"
RULE = ("lfw View-2 10-fold on pairs disjoint from BLUFR trial-1 training identities + BLUFR trial 1 "
        "(this package's definition)")
RECORD_SUBDIR = "lfw_scale"
DEFAULT_OVERRIDES = ("method.patch_radius=30", "train.steps=400", "train.batch_size=64", "train.warmup_steps=20")
IMAGES = ("lfw", "aligned-112x96")
PAIRS = ("lfw", "pairs.txt")
BLUFR = ("blufr", "blufr_lfw_config.mat")


def data_files(root: str | os.PathLike) -> tuple[Path, Path, Path]:
    """(images folder, pairs.txt, BLUFR config) under a data root laid out like ../shared/data."""
    root = Path(root)
    paths = (root.joinpath(*IMAGES), root.joinpath(*PAIRS), root.joinpath(*BLUFR))
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise MissingDataError(f"LFW-scale data root {root}: missing {', '.join(missing)} "
                               "(expects lfw/aligned-112x96/Name/Name_0001.jpg, lfw/pairs.txt, blufr/blufr_lfw_config.mat)")
    return paths


class _Faces:
    """In-memory faces with the synthetic set's fast-path attributes (images, labels, landmarks)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images = images
        _, self.labels = np.unique(labels, return_inverse=True)
        self.labels = self.labels.astype(np.int64)
        self.landmarks = np.repeat(np.asarray(ARCFACE_112, np.float32)[None], len(labels), 0)
        self.num_classes = int(self.labels.max()) + 1

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.images[i], int(self.labels[i]), self.landmarks[i]


_CACHE: dict = {}


def load_lfw(root: str | os.PathLike):
    """(all 13,233 images in BLUFR order as N x 112 x 112 x 3 RGB, BLUFR config, LFW pairs); cached per process."""
    key = str(Path(root).resolve())
    if key in _CACHE:
        return _CACHE[key]

    img_dir, pairs_file, cfg_file = data_files(root)
    cfg = load_blufr_config(cfg_file)
    imgs = np.zeros((len(cfg.image_list), 112, 112, 3), np.uint8)
    for k, name in enumerate(cfg.image_list):
        path = img_dir / name.rsplit("_", 1)[0] / name
        try:
            im = decode_bgr(read_capped(path, "image", MAX_IMAGE_FILE_BYTES), str(path))
        except ArfaceError as exc:
            raise MissingDataError(f"{path}: missing or unreadable (BLUFR imageList entry {k + 1}): {exc}") from None
        if im.shape[:2] != (112, 96):
            raise FormatError(f"{path}: expected a 112x96 aligned crop, got {im.shape[1]}x{im.shape[0]}")
        imgs[k, :, 8:104] = im[:, :, ::-1]
    _CACHE[key] = (imgs, cfg, parse_lfw_pairs(pairs_file))
    return _CACHE[key]


def kept_pairs(cfg, pairs, trial: int = 0):
    """The LFW pairs whose two people are outside the BLUFR trial's training identities: (rows of image a,
    rows of image b in the config's image list, boolean mask over the pair list)."""
    row_of = {n: i for i, n in enumerate(cfg.image_list)}
    train_people = {cfg.image_list[i].rsplit("_", 1)[0] for i in cfg.train_index[trial]}
    pa = [p.rsplit("/", 1)[-1] for p in pairs.path_a]
    pb = [p.rsplit("/", 1)[-1] for p in pairs.path_b]
    keep = np.array([a.rsplit("_", 1)[0] not in train_people and b.rsplit("_", 1)[0] not in train_people
                     for a, b in zip(pa, pb)])
    missing = [n for n, k in zip(pa + pb, np.r_[keep, keep]) if k and n not in row_of]
    if missing:
        raise FormatError(f"{pairs.source}: {len(missing)} pair images are not in the BLUFR image list (first: {missing[0]})")
    ia = np.array([row_of[a] for a, k in zip(pa, keep) if k], np.int64)
    ib = np.array([row_of[b] for b, k in zip(pb, keep) if k], np.int64)
    return ia, ib, keep


def evaluate(trainer, root: str | os.PathLike) -> dict:
    """The LFW-scale columns for a trained model (see the module doc)."""

    imgs, cfg, pairs = load_lfw(root)
    lms = np.repeat(np.asarray(ARCFACE_112, np.float32)[None], len(imgs), 0)
    feats, _ = trainer.embed(imgs, lms)
    x = l2_normalize(feats.astype(np.float64))
    labels = cfg.labels
    vr, _, _ = eval_roc(x[cfg.test_index[0]], labels[cfg.test_index[0]])
    gal, prob = cfg.gal_index[0], cfg.prob_index[0]
    d, _, _ = open_set_roc(x[gal] @ x[prob].T, labels[gal], labels[prob])
    vi = int(np.argmin(np.abs(VERIFY_FARS - REPORT_VERIFY_FAR)))
    oi = int(np.argmin(np.abs(OSI_FARS - REPORT_OSI_FAR)))
    ri = int(np.flatnonzero(RANKS == REPORT_RANK)[0])
    ia, ib, keep = kept_pairs(cfg, pairs)
    dist = squared_l2(x[ia], x[ib])
    issame, fold = pairs.issame[keep], pairs.fold[keep]
    res = kfold_accuracy(dist, issame, fold)
    correct = (dist < res.threshold[np.searchsorted(np.unique(fold), fold)]) == issame
    return {"metrics": {"Acc": 100.0 * res.mean, "Acc.std": 100.0 * res.std, "VR@FAR=0.1%": 100.0 * float(vr[vi]),
                        "DIR@FAR=1%": 100.0 * float(d[ri, oi])},
            "per_fold": {"Acc": (100.0 * res.accuracy).tolist(), "threshold": res.threshold.tolist()},
            "per_pair": {"correct": "".join("1" if c else "0" for c in correct)},
            "counts": {"pairs": int(keep.sum()), "of_pairs": int(len(keep)), "genuine": int(issame.sum()),
                       "train_images": int(len(cfg.train_index[0])),
                       "blufr_trial": 1}}


@functools.lru_cache(maxsize=4)
def data_identity(root: str) -> dict:
    """The data a run reads under `root`: the BLUFR-ordered image list with the files' sizes
    (`eval.store_provenance.image_list_identity`) and the sha256 of pairs.txt and the BLUFR config. Part of the
    run key, so a changed dataset is trained again rather than served from a record of the old one."""

    img_dir, pairs_file, cfg_file = data_files(root)
    names = load_blufr_config(cfg_file).image_list
    return {"images": image_list_identity([f"{n.rsplit('_', 1)[0]}/{n}" for n in names], img_dir),
            "pairs_sha256": sha256_file(pairs_file), "blufr_config_sha256": sha256_file(cfg_file)}


def run_key(job: Job, root: str) -> str:
    h = hashlib.sha256(job.path.read_bytes())
    h.update(json.dumps(sorted(job.overrides)).encode())
    h.update(f"seed={job.seed};root={Path(root).resolve()};code={code_key()};env={environment_key()}".encode())
    h.update(json.dumps(data_identity(str(Path(root).resolve())), sort_keys=True).encode())
    return h.hexdigest()[:16]


def record_file(runs_dir, job: Job, root: str) -> Path:
    return Path(runs_dir) / RECORD_SUBDIR / f"{job.config}-s{job.seed}-{run_key(job, root)}.json"


def train_job(job: Job, root: str, runs_dir: str, threads: int = 1) -> dict:
    import torch

    torch.set_num_threads(threads)
    # the trainer imports torch: imported in the worker that trains, not by the report that reads records
    from arface_repro.train.loop import train

    imgs, cfg, _ = load_lfw(root)
    tr = cfg.train_index[0]
    faces = _Faces(imgs[tr], cfg.labels[tr])
    t0 = time.time()
    ov = [*job.overrides, f"seed={job.seed}", "train.quiet=true", "data.kind=folder",
          f"out_dir={Path(runs_dir) / 'train' / RECORD_SUBDIR / f'{job.config}-s{job.seed}'}"]
    res = train(job.path, ov, verify_fn=lambda trainer: evaluate(trainer, root), datasets=(faces, None))
    m = res.metrics
    rec = build_record(PROTOCOL, RULE, m["metrics"], per_fold=m["per_fold"], model=f"config:{job.config}",
                       inputs={"config": job.path},
                       extra={"run_key": run_key(job, root), "seed": job.seed, "overrides": list(job.overrides),
                              "per_pair": m["per_pair"], "counts": m["counts"], "data_root": str(Path(root).resolve()),
                              **data_identity(str(Path(root).resolve())),
                              "steps": res.history[-1]["step"] if res.history else 0, "train_seconds": time.time() - t0,
                              "torch_threads": threads, "scale": "LFW-scale (BLUFR trial 1 training identities, tiny backbone)"})
    path = write_record(rec, record_file(runs_dir, job, root))
    rec["_path"] = str(path)
    return rec


def _worker(args) -> dict:
    return train_job(*args)


def run_jobs(jobs: Iterable[Job], root: str | os.PathLike, runs_dir: str | os.PathLike, workers: int = 1,
             rerun: bool = False, log: Callable[[str], None] = print) -> dict[Job, dict]:
    root, runs_dir = str(root), str(runs_dir)
    data_files(root)
    jobs = list(dict.fromkeys(jobs))
    for j in jobs:
        if not j.path.is_file():
            raise ConfigError(f"{j.path}: config not found")
    out, todo = {}, []
    for j in jobs:
        p = record_file(runs_dir, j, root)
        if p.is_file() and not rerun:
            rec = load_record(p)
            rec["_path"] = str(p)
            out[j] = rec
        else:
            todo.append(j)
    if out:
        log(f"  {len(out)} of {len(jobs)} LFW-scale runs reused from {Path(runs_dir) / RECORD_SUBDIR}")
    if not todo:
        return out
    log(f"  training {len(todo)} LFW-scale runs, {workers} at a time ...")
    t0 = time.time()
    if workers <= 1:
        results = (train_job(j, root, runs_dir) for j in todo)
        for i, (j, rec) in enumerate(zip(todo, results), 1):
            out[j] = rec
            log(f"  [{i}/{len(todo)}] {j.config} seed {j.seed}: {rec['train_seconds']:.0f} s, Acc {rec['metrics']['Acc']:.2f}  "
                f"({time.time() - t0:.0f} s elapsed)")
    else:

        for i, ((j, _, _), rec) in enumerate(run_unordered(_worker, [(j, root, runs_dir) for j in todo], workers), 1):
            out[j] = rec
            log(f"  [{i}/{len(todo)}] {j.config} seed {j.seed}: {rec['train_seconds']:.0f} s, "
                f"Acc {rec['metrics']['Acc']:.2f}  ({time.time() - t0:.0f} s elapsed)")
    log(f"  trained {len(todo)} LFW-scale runs in {time.time() - t0:.0f} s")
    return out

