"""The LFW-scale reproduction's data split (BLUFR trial 1) and its argument checks; the training itself runs
in `reproduce_table.py X --lfw-scale` (tens of minutes), not here."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require

from arface_repro.errors import MissingDataError
from arface_repro.paper.lfw_scale import data_files, kept_pairs
from arface_repro.paper.small_scale import parse_seeds


def test_kept_pairs_exclude_the_training_identities(shared):
    from arface_repro.eval.blufr.config import load_blufr_config
    from arface_repro.io.pairs import parse_lfw_pairs

    cfg = load_blufr_config(require(shared / "data" / "blufr" / "blufr_lfw_config.mat"))
    pairs = parse_lfw_pairs(require(shared / "data" / "lfw" / "pairs.txt"))
    ia, ib, keep = kept_pairs(cfg, pairs)
    assert keep.sum() == len(ia) == len(ib) == 3918 and pairs.issame[keep].sum() == 2258
    assert np.bincount(pairs.fold[keep]).tolist() == [389, 414, 387, 392, 373, 404, 384, 359, 410, 406]
    trained = {cfg.labels[i] for i in cfg.train_index[0]}
    assert not ({cfg.labels[i] for i in ia} | {cfg.labels[i] for i in ib}) & trained
    # the kept pairs point at the same images as the pair list
    names = np.array(cfg.image_list)
    assert [n.rsplit("/", 1)[-1] for n in pairs.path_a[keep][:3]] == names[ia[:3]].tolist()
    # BLUFR trial 1's test split is identity-disjoint from its training split
    assert not set(cfg.labels[cfg.test_index[0]]) & trained


def test_data_root_is_checked(tmp_path):
    with pytest.raises(MissingDataError, match="lfw/pairs.txt"):
        data_files(tmp_path)


def test_parse_seeds():
    assert parse_seeds(None, [0, 1, 2]) == [0, 1, 2]
    assert parse_seeds("0-4", []) == [0, 1, 2, 3, 4] and parse_seeds("3,1,3", []) == [3, 1]
    with pytest.raises(Exception, match="--seeds"):
        parse_seeds("a", [])
